import CFFmpeg
import Foundation

/// Rewrites the HLS side of a package the DASH muxer wrote: media playlists marked VOD (and
/// without wall-clock dates, which mean nothing for VOD), and a master playlist whose BANDWIDTH is
/// the measured peak of any segment (video plus audio) and AVERAGE-BANDWIDTH the measured mean,
/// with CODECS, RESOLUTION and FRAME-RATE, as Apple's authoring specification asks.
enum HLSPlaylists {
    struct Measured {
        var peak = 0.0
        var average = 0.0
        var duration = 0.0
    }

    static func rewrite(folder: String, transcoder: Transcoder) throws(TranscodeError) -> PackageSummary {
        let fps = Double(transcoder.frameRate.num) / Double(max(transcoder.frameRate.den, 1))
        var audio = Measured()
        var audioPlaylist: String?
        if transcoder.audioEncoder != nil {
            audioPlaylist = "media_\(transcoder.audioStreamIndex).m3u8"
            audio = try measureAndClean(folder: folder, playlist: audioPlaylist!)
        }
        var renditions: [PackageSummary.Rendition] = []
        for rendition in transcoder.renditions {
            let playlist = "media_\(rendition.streamIndex).m3u8"
            let video = try measureAndClean(folder: folder, playlist: playlist)
            let codecs = [avcCodec(rendition.encoder!)] + (audioPlaylist == nil ? [] : ["mp4a.40.2"])
            renditions.append(
                PackageSummary.Rendition(
                    name: "\(rendition.rung.height)p", width: Int(rendition.width), height: Int(rendition.height),
                    bandwidth: Int((video.peak + audio.peak).rounded(.up)), averageBandwidth: Int((video.average + audio.average).rounded(.up)),
                    codecs: codecs.joined(separator: ","), frameRate: fps, playlist: playlist))
        }
        var master = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        if let audioPlaylist {
            master += "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"\(audioPlaylist)\"\n"
        }
        for r in renditions {
            master += "#EXT-X-STREAM-INF:BANDWIDTH=\(r.bandwidth),AVERAGE-BANDWIDTH=\(r.averageBandwidth),CODECS=\"\(r.codecs)\","
            master += "RESOLUTION=\(r.width)x\(r.height),FRAME-RATE=\(String(format: "%.3f", r.frameRate))"
            master += audioPlaylist == nil ? "\n" : ",AUDIO=\"audio\"\n"
            master += r.playlist + "\n"
        }
        do {
            try master.write(toFile: folder + "/master.m3u8", atomically: true, encoding: .utf8)
        } catch {
            throw TranscodeError("cannot write master.m3u8: \(error)")
        }
        let duration = transcoder.info.durationSeconds
        return PackageSummary(renditions: renditions, durationSeconds: duration, segmentSeconds: transcoder.settings.segmentSeconds)
    }

    /// Reads a media playlist's segments (EXTINF and file sizes), rewrites it as VOD, and returns
    /// the peak and mean bits per second.
    static func measureAndClean(folder: String, playlist: String) throws(TranscodeError) -> Measured {
        let path = folder + "/" + playlist
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw TranscodeError("the muxer wrote no \(playlist)") }
        var measured = Measured()
        var bits = 0.0
        var pendingDuration: Double?
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("#EXT-X-PROGRAM-DATE-TIME") || line.hasPrefix("#EXT-X-PLAYLIST-TYPE") || line == "#EXT-X-ENDLIST" { continue }
            lines.append(line)
            if line == "#EXTM3U" { lines.append("#EXT-X-PLAYLIST-TYPE:VOD") }
            if line.hasPrefix("#EXTINF:") {
                pendingDuration = Double(line.dropFirst(8).prefix { $0 != "," })
            } else if !line.hasPrefix("#"), !line.isEmpty, let duration = pendingDuration {
                pendingDuration = nil
                let size = (try? FileManager.default.attributesOfItem(atPath: folder + "/" + line)[.size] as? Int) ?? 0
                let segmentBits = Double(size) * 8
                bits += segmentBits
                measured.duration += duration
                if duration > 0.5 { measured.peak = max(measured.peak, segmentBits / duration) }
            }
        }
        while lines.last == "" { lines.removeLast() }
        lines.append("#EXT-X-ENDLIST")
        measured.average = measured.duration > 0 ? bits / measured.duration : 0
        if measured.peak == 0 { measured.peak = measured.average }
        do {
            try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw TranscodeError("cannot rewrite \(playlist): \(error)")
        }
        return measured
    }

    /// `avc1.PPCCLL` from the encoder's SPS (avcC or Annex B extradata).
    static func avcCodec(_ encoder: UnsafeMutablePointer<AVCodecContext>) -> String {
        let size = Int(encoder.pointee.extradata_size)
        guard let data = encoder.pointee.extradata, size >= 8 else { return "avc1.640028" }
        var profile = 0x64, compatibility = 0, level = 0x28
        if data[0] == 1 {
            (profile, compatibility, level) = (Int(data[1]), Int(data[2]), Int(data[3]))
        } else {
            // Annex B: find the first SPS NAL unit (type 7).
            var i = 0
            while i + 4 < size {
                if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 && data[i + 3] & 0x1F == 7 && i + 6 < size {
                    (profile, compatibility, level) = (Int(data[i + 4]), Int(data[i + 5]), Int(data[i + 6]))
                    break
                }
                i += 1
            }
        }
        return String(format: "avc1.%02x%02x%02x", profile, compatibility, level)
    }
}
