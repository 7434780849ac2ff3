import CFFmpeg

/// Probes a source with libavformat in-process: opens it (through `SourceInput`, which accepts
/// single-file movie containers only and lets nothing else be opened), reads the stream parameters, then
/// demuxes every packet (no decoding but the first video frame) to catch files that end before
/// their header says, and decodes one frame to catch bitstreams that cannot be decoded.
/// Cost: one read of the file.
public enum MediaProbe {
    /// - Parameter thorough: read every packet (truncation, variable frame rate, a decodable first
    ///   frame). The packager passes false: the transcode reads every packet anyway and makes the
    ///   same checks as it goes, so the file is read once.
    public static func probe(_ path: String, limits: ProbeLimits = ProbeLimits(), thorough: Bool = true) throws(ProbeRefusal) -> MediaInfo {
        let input = try SourceInput.open(path)
        // `format` belongs to `input`: keep it alive until the probe is done.
        defer { withExtendedLifetime(input) {} }
        let format = input.format
        let found = avformat_find_stream_info(format, nil)
        guard found >= 0 else { throw .corrupt("cannot read the stream parameters (\(errorText(found)))") }

        let videoIndex = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        guard videoIndex >= 0, let videoStream = format.pointee.streams[Int(videoIndex)] else { throw .noVideo }
        let parameters = videoStream.pointee.codecpar.pointee
        let codec = String(cString: avcodec_get_name(parameters.codec_id))
        guard limits.videoCodecs.contains(codec) else {
            throw .unsupportedCodec("video codec \(codec) is not one of \(limits.videoCodecs.sorted().joined(separator: ", "))")
        }
        let pixelFormat = AVPixelFormat(rawValue: parameters.format)
        let descriptor = av_pix_fmt_desc_get(pixelFormat)
        let rotation = ((-Int(mq_stream_rotation(videoStream).rounded()) % 360) + 360) % 360
        let average = videoStream.pointee.avg_frame_rate
        let nominal = videoStream.pointee.r_frame_rate
        var video = VideoInfo(
            codec: codec, width: Int(parameters.width), height: Int(parameters.height),
            sampleAspectRatio: Rational(Int(parameters.sample_aspect_ratio.num), Int(parameters.sample_aspect_ratio.den)),
            rotation: rotation, frameRate: Rational(Int(average.num), Int(average.den)),
            variableFrameRate: false,
            pixelFormat: descriptor.map { String(cString: $0.pointee.name) } ?? "unknown",
            bitDepth: descriptor.map { Int($0.pointee.comp.0.depth) } ?? 8,
            interlaced: parameters.field_order != AV_FIELD_PROGRESSIVE && parameters.field_order != AV_FIELD_UNKNOWN)
        if video.frameRate.numerator <= 0 || video.frameRate.denominator <= 0 {
            video.frameRate = Rational(Int(nominal.num), Int(nominal.den))
        }

        var audio: [AudioInfo] = []
        for i in 0..<Int(format.pointee.nb_streams) {
            guard let stream = format.pointee.streams[i], stream.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_AUDIO else { continue }
            var p = stream.pointee.codecpar.pointee
            let name = String(cString: avcodec_get_name(p.codec_id))
            guard limits.audioCodecs.contains(name) else {
                throw .unsupportedCodec("audio codec \(name) is not one of \(limits.audioCodecs.sorted().joined(separator: ", "))")
            }
            var layout = [CChar](repeating: 0, count: 64)
            _ = av_channel_layout_describe(&p.ch_layout, &layout, layout.count)
            audio.append(
                AudioInfo(
                    codec: name, sampleRate: Int(p.sample_rate), channels: Int(p.ch_layout.nb_channels),
                    layout: String(decoding: layout.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)))
        }

        let declared = format.pointee.duration != mq_nopts_value() ? Double(format.pointee.duration) / Double(AV_TIME_BASE) : 0
        var duration = declared
        if thorough {
            let (videoEnd, decoded, variable) = try demux(format, videoIndex: Int(videoIndex), limits: limits, rotation: rotation)
            video.variableFrameRate = variable
            guard decoded else { throw .corrupt("the first video frame cannot be decoded") }
            try checkComplete(declared: declared, videoEnd: videoEnd)
            if declared <= 0 { duration = videoEnd }
        } else if declared <= 0 {
            throw .corrupt("the file does not say how long it is")
        }
        try limits.checkDisplaySize(video.displaySize)
        guard (limits.minimumDuration...limits.maximumDuration).contains(duration) else {
            throw .durationOutOfRange("\(format1(duration)) s is outside \(format1(limits.minimumDuration)) to \(format1(limits.maximumDuration)) s")
        }
        return MediaInfo(
            container: String(cString: format.pointee.iformat.pointee.name), durationSeconds: duration,
            bitRate: Int(format.pointee.bit_rate), video: video, audio: audio)
    }

    /// Refuses a file whose video stops well before the duration its header declares.
    public static func checkComplete(declared: Double, videoEnd: Double) throws(ProbeRefusal) {
        if declared > 0 && videoEnd < declared * 0.9 - 0.5 {
            throw .truncated("its header says \(format1(declared)) s but the video stops at \(format1(videoEnd)) s")
        }
    }

    /// Reads every packet; returns where the video ends (seconds), whether its first frame
    /// decoded, and whether frames are unevenly spaced (the longest decode-time step is more than
    /// 1.5 times the shortest: variable frame rate).
    /// The first decoded frame must be within `limits` too (its size may differ from the header's).
    static func demux(
        _ format: UnsafeMutablePointer<AVFormatContext>, videoIndex: Int, limits: ProbeLimits, rotation: Int
    ) throws(ProbeRefusal) -> (Double, Bool, Bool) {
        guard let stream = format.pointee.streams[videoIndex], let decoder = avcodec_find_decoder(stream.pointee.codecpar.pointee.codec_id) else {
            throw .unsupportedCodec("no decoder for the video stream")
        }
        var codec = avcodec_alloc_context3(decoder)
        defer { avcodec_free_context(&codec) }
        guard let codec, avcodec_parameters_to_context(codec, stream.pointee.codecpar) >= 0, avcodec_open2(codec, decoder, nil) >= 0 else {
            throw .corrupt("the video decoder cannot be opened")
        }
        var packet = av_packet_alloc()
        var frame = av_frame_alloc()
        defer {
            av_packet_free(&packet)
            av_frame_free(&frame)
        }
        let timeBase = stream.pointee.time_base
        var end: Int64 = 0
        var decoded = false
        var sent = 0
        var previousDTS = mq_nopts_value()
        var shortest = Int64.max
        var longest: Int64 = 0
        while true {
            let read = av_read_frame(format, packet)
            if read == mq_averror_eof() { break }
            guard read >= 0 else {
                if decoded { break }  // a damaged tail after good frames is judged by the duration check
                throw .corrupt("reading failed (\(errorText(read)))")
            }
            defer { av_packet_unref(packet) }
            guard Int(packet!.pointee.stream_index) == videoIndex else { continue }
            let pts = packet!.pointee.pts != mq_nopts_value() ? packet!.pointee.pts : packet!.pointee.dts
            // Saturating: a hostile file's timestamps may sit anywhere in Int64.
            if pts != mq_nopts_value() {
                let (packetEnd, overflow) = pts.addingReportingOverflow(max(packet!.pointee.duration, 0))
                end = max(end, overflow ? Int64.max : packetEnd)
            }
            let dts = packet!.pointee.dts
            if dts != mq_nopts_value() {
                let (step, overflow) = dts.subtractingReportingOverflow(previousDTS)
                if previousDTS != mq_nopts_value() && dts > previousDTS && !overflow {
                    shortest = min(shortest, step)
                    longest = max(longest, step)
                }
                previousDTS = dts
            }
            if !decoded && sent < 64 {
                sent += 1
                if avcodec_send_packet(codec, packet) >= 0 && avcodec_receive_frame(codec, frame) >= 0 { decoded = true }
            }
        }
        if !decoded {
            // Decoders with delay hand out their first frame only when drained.
            _ = avcodec_send_packet(codec, nil)
            decoded = avcodec_receive_frame(codec, frame) >= 0
        }
        if decoded { try limits.checkDisplaySize(VideoInfo.displaySize(of: frame!, rotation: rotation)) }
        let startTime = stream.pointee.start_time != mq_nopts_value() ? stream.pointee.start_time : 0
        let variable = shortest != Int64.max && Double(longest) * 2 > Double(shortest) * 3
        return ((Double(end) - Double(startTime)) * Double(timeBase.num) / Double(timeBase.den), decoded, variable)
    }

    static func errorText(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        return String(cString: mq_error_string(code, &buffer, buffer.count))
    }

    static func format1(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

extension VideoInfo {
    /// The size a player shows of a decoded frame (at its own sample aspect ratio), rotated as the
    /// stream says.
    static func displaySize(of frame: UnsafeMutablePointer<AVFrame>, rotation: Int) -> (width: Int, height: Int) {
        let sar = frame.pointee.sample_aspect_ratio
        return displaySize(
            width: Int(frame.pointee.width), height: Int(frame.pointee.height), sampleAspectRatio: Rational(Int(sar.num), Int(sar.den)),
            rotation: rotation)
    }
}
