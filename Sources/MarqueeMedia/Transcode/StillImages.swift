import CFFmpeg
import Foundation

/// The poster (`poster.jpg`, one frame a tenth of the way in, at the top rung's size) and the
/// scrubbing thumbnails: a frame every `interval` seconds, `tileWidth` wide, laid out 10 by 10 in
/// JPEG sprites (`thumbnails-N.jpg`) and indexed by a WebVTT track (`thumbnails.vtt`, cues with
/// `#xywh=` fragments) that players show while scrubbing.
final class StillImages {
    let folder: String
    let rotation: Int
    let posterAt: Double
    let posterSize: (width: Int32, height: Int32)
    let interval: Double
    let tile: (width: Int32, height: Int32)
    static let columns: Int32 = 10
    static let rows: Int32 = 10
    /// Thumbnails the duration calls for.
    let expected: Int
    var posterWritten = false
    var nextThumbnail = 0.0
    var thumbnails: [(start: Double, sprite: Int, x: Int32, y: Int32)] = []
    var sprite: UnsafeMutablePointer<AVFrame>? = av_frame_alloc()
    var scaled: UnsafeMutablePointer<AVFrame>? = av_frame_alloc()
    var rotated: UnsafeMutablePointer<AVFrame>? = av_frame_alloc()
    var scaler: OpaquePointer?

    init(folder: String, rotation: Int, durationSeconds: Double, posterSize: (Int32, Int32), aspect: Double, interval: Double, tileWidth: Int32) {
        self.folder = folder
        self.rotation = rotation
        posterAt = max(0, min(durationSeconds * 0.1, max(0, durationSeconds - 0.5)))
        self.posterSize = posterSize
        self.interval = interval
        tile = (tileWidth, Int32(max(2, Int((Double(tileWidth) / aspect / 2).rounded()) * 2)))
        expected = max(1, Int((durationSeconds / interval).rounded(.up)))
    }

    deinit {
        av_frame_free(&sprite)
        av_frame_free(&scaled)
        av_frame_free(&rotated)
        sws_freeContext(scaler)
    }

    /// Called with every decoded frame and its time; captures what is due.
    func offer(_ frame: UnsafeMutablePointer<AVFrame>, at seconds: Double) throws(TranscodeError) {
        if !posterWritten && seconds >= posterAt {
            posterWritten = true
            let picture = try picture(of: frame, width: posterSize.width, height: posterSize.height)
            try Self.writeJPEG(picture, to: folder + "/poster.jpg")
        }
        while seconds >= nextThumbnail {
            let index = thumbnails.count
            let perSprite = Int(Self.columns * Self.rows)
            if index % perSprite == 0 {
                if index > 0 { try Self.writeJPEG(sprite!, to: folder + "/thumbnails-\(index / perSprite - 1).jpg") }
                try newSprite(count: index)
            }
            let slot = Int32(index % perSprite)
            let x = (slot % Self.columns) * tile.width
            let y = (slot / Self.columns) * tile.height
            // A source longer than its header said: no room left in this sprite, stop adding.
            guard y + tile.height <= sprite!.pointee.height else { return }
            let picture = try picture(of: frame, width: tile.width, height: tile.height)
            blit(picture, into: sprite!, x: x, y: y)
            thumbnails.append((nextThumbnail, index / perSprite, x, y))
            nextThumbnail += interval
        }
    }

    /// Writes the last sprite and the WebVTT index.
    func finish(durationSeconds: Double) throws(TranscodeError) {
        guard !thumbnails.isEmpty else { return }
        let perSprite = Int(Self.columns * Self.rows)
        try Self.writeJPEG(sprite!, to: folder + "/thumbnails-\((thumbnails.count - 1) / perSprite).jpg")
        var vtt = "WEBVTT\n"
        for (i, thumbnail) in thumbnails.enumerated() {
            let last = durationSeconds > thumbnail.start ? min(durationSeconds, thumbnail.start + interval) : thumbnail.start + interval
            let end = i + 1 < thumbnails.count ? thumbnails[i + 1].start : last
            vtt += "\n\(Self.timestamp(thumbnail.start)) --> \(Self.timestamp(end))\n"
            vtt += "thumbnails-\(thumbnail.sprite).jpg#xywh=\(thumbnail.x),\(thumbnail.y),\(tile.width),\(tile.height)\n"
        }
        do {
            try vtt.write(toFile: folder + "/thumbnails.vtt", atomically: true, encoding: .utf8)
        } catch {
            throw TranscodeError("cannot write thumbnails.vtt: \(error)")
        }
    }

    static func timestamp(_ seconds: Double) -> String {
        let ms = Int((seconds * 1000).rounded())
        return String(format: "%02d:%02d:%02d.%03d", ms / 3_600_000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000)
    }

    private func newSprite(count: Int) throws(TranscodeError) {
        // Sized for the thumbnails still expected (the last sprite is usually partial).
        let remaining = Int32(min(Int(Self.columns * Self.rows), max(1, expected - count)))
        av_frame_unref(sprite)
        sprite!.pointee.width = Self.columns * tile.width
        sprite!.pointee.height = ((remaining + Self.columns - 1) / Self.columns) * tile.height
        sprite!.pointee.format = AV_PIX_FMT_YUVJ420P.rawValue
        guard av_frame_get_buffer(sprite, 0) >= 0 else { throw TranscodeError("cannot allocate a thumbnail sprite") }
        // Black: Y 0, chroma 128 (full range).
        let s = sprite!.pointee
        if let y = s.data.0, let u = s.data.1, let v = s.data.2 {
            memset(y, 0, Int(s.linesize.0 * s.height))
            memset(u, 128, Int(s.linesize.1 * (s.height / 2)))
            memset(v, 128, Int(s.linesize.2 * (s.height / 2)))
        }
    }

    /// `frame` scaled (and rotated) to width x height, full-range 4:2:0 for JPEG.
    private func picture(of frame: UnsafeMutablePointer<AVFrame>, width: Int32, height: Int32) throws(TranscodeError) -> UnsafeMutablePointer<AVFrame> {
        let sideways = rotation == 90 || rotation == 270
        let (sw, sh) = sideways ? (height, width) : (width, height)
        try allocate(scaled!, sw, sh)
        scaler = sws_getCachedContext(
            scaler, frame.pointee.width, frame.pointee.height, AVPixelFormat(rawValue: frame.pointee.format), sw, sh, AV_PIX_FMT_YUVJ420P,
            SWS_BICUBIC, nil, nil, nil)
        guard scaler != nil, sws_scale_frame(scaler, scaled, frame) >= 0 else { throw TranscodeError("cannot scale a still image") }
        guard rotation != 0 else { return scaled! }
        try allocate(rotated!, width, height)
        PlaneRotation.rotate(scaled!, into: rotated!, clockwise: rotation)
        return rotated!
    }

    private func allocate(_ frame: UnsafeMutablePointer<AVFrame>, _ width: Int32, _ height: Int32) throws(TranscodeError) {
        av_frame_unref(frame)
        frame.pointee.width = width
        frame.pointee.height = height
        frame.pointee.format = AV_PIX_FMT_YUVJ420P.rawValue
        guard av_frame_get_buffer(frame, 0) >= 0 else { throw TranscodeError("cannot allocate a still image") }
    }

    private func blit(_ picture: UnsafeMutablePointer<AVFrame>, into sprite: UnsafeMutablePointer<AVFrame>, x: Int32, y: Int32) {
        let p = picture.pointee
        let s = sprite.pointee
        let planes = [(p.data.0, p.linesize.0, s.data.0, s.linesize.0, Int32(0)), (p.data.1, p.linesize.1, s.data.1, s.linesize.1, 1), (p.data.2, p.linesize.2, s.data.2, s.linesize.2, 1)]
        for (from, fromStride, to, toStride, shift) in planes {
            guard let from, let to else { continue }
            let width = Int(p.width >> shift)
            for row in 0..<Int(p.height >> shift) {
                memcpy(to + Int((y >> shift) + Int32(row)) * Int(toStride) + Int(x >> shift), from + row * Int(fromStride), width)
            }
        }
    }

    /// Encodes one picture as a JPEG file (libavcodec's MJPEG encoder, quality 3 of 31).
    static func writeJPEG(_ picture: UnsafeMutablePointer<AVFrame>, to path: String) throws(TranscodeError) {
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG) else { throw TranscodeError("no JPEG encoder") }
        var context = avcodec_alloc_context3(codec)
        defer { avcodec_free_context(&context) }
        guard let context else { throw TranscodeError("no JPEG encoder") }
        context.pointee.width = picture.pointee.width
        context.pointee.height = picture.pointee.height
        context.pointee.pix_fmt = AV_PIX_FMT_YUVJ420P
        context.pointee.time_base = AVRational(num: 1, den: 25)
        context.pointee.flags |= AV_CODEC_FLAG_QSCALE
        context.pointee.global_quality = 3 * FF_QP2LAMBDA
        guard avcodec_open2(context, codec, nil) >= 0 else { throw TranscodeError("cannot open the JPEG encoder") }
        picture.pointee.quality = context.pointee.global_quality
        picture.pointee.pts = 0
        var packet = av_packet_alloc()
        defer { av_packet_free(&packet) }
        guard avcodec_send_frame(context, picture) >= 0, avcodec_send_frame(context, nil) >= 0,
            avcodec_receive_packet(context, packet) >= 0, let data = packet!.pointee.data
        else {
            throw TranscodeError("cannot encode \(path)")
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes: data, count: Int(packet!.pointee.size))) else {
            throw TranscodeError("cannot write \(path)")
        }
    }
}
