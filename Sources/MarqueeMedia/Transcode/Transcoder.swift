import CFFmpeg
import Foundation

/// Decodes a source once and encodes every rung of its ladder (libx264, closed GOPs with an IDR
/// frame at every segment boundary of every rendition, peaks capped by maxrate/bufsize) and the
/// first audio stream as stereo AAC, into one CMAF segment set that serves both HLS and DASH
/// (libavformat's DASH muxer).
///
/// Threads: this one reads, decodes, makes the stills and encodes audio; each rung scales and
/// encodes on a thread of its own, fed through a short `FrameQueue`, so the rungs' scaling runs
/// in parallel with decoding and with each other (libx264 adds its own threads per encoder). The
/// muxer is shared, behind `muxLock`. Then the HLS playlists are rewritten with what was measured:
/// BANDWIDTH is the peak of any segment, AVERAGE-BANDWIDTH the mean.
///
/// Sources are normalized on the way: interlaced frames deinterlaced, rotation applied, non-square
/// pixels made square, variable frame rates made constant (frames dropped or repeated), 10-bit
/// reduced to 8-bit 4:2:0, 5.1 downmixed to stereo.
///
/// The work a source can cause is bounded by what the probe found: every decoded frame must be
/// within `limits` (a stream may change size mid-way), and nothing is output past the probed
/// duration plus a margin (`outputLimitSeconds`): video frames and audio samples timed beyond it
/// are dropped, so a frame with a wild timestamp neither makes the constant-rate output repeat
/// a picture for hours nor lengthens the package. Dropping rather than failing keeps real files
/// with a stray timestamp publishable; the package then ends where the probe said it would.
public final class Transcoder {
    let source: String
    let folder: String
    let settings: TranscodeSettings
    let info: MediaInfo
    let limits: ProbeLimits

    /// The source, opened as `SourceInput` allows (a single-file movie container, nothing else
    /// opened); `input` is its format context.
    var opened: SourceInput?
    var input: UnsafeMutablePointer<AVFormatContext>? { opened?.format }
    var output: UnsafeMutablePointer<AVFormatContext>?
    var videoDecoder: UnsafeMutablePointer<AVCodecContext>?
    var audioDecoder: UnsafeMutablePointer<AVCodecContext>?
    var audioEncoder: UnsafeMutablePointer<AVCodecContext>?
    var resampler: OpaquePointer?
    var audioFifo: OpaquePointer?
    var renditions: [RenditionEncoder] = []
    var videoIndex: Int32 = -1
    var audioIndex: Int32 = -1
    var audioStreamIndex: Int32 = -1
    var packet = av_packet_alloc()
    var frame = av_frame_alloc()
    var resampled = av_frame_alloc()
    var frameRate = AVRational(num: 25, den: 1)
    var gop: Int64 = 100
    var nextSlot: Int64 = 0
    var audioSamples: Int64 = 0
    var audioStarted = false
    var startSeconds = 0.0
    var stills: StillImages?
    /// Where the decoded video has reached, in seconds from the start.
    var videoEnd = 0.0
    /// Nothing is output at or past this time (seconds from the start).
    let outputLimitSeconds: Double
    /// Serializes writes to `output` from the rung threads and this one.
    let muxLock = NSLock()

    /// One rung: its scaler, its frames, its encoder and its output stream, used only by its own
    /// encoding thread once that has started.
    final class RenditionEncoder: @unchecked Sendable {
        let rung: Ladder.Rung
        let width: Int32
        let height: Int32
        var encoder: UnsafeMutablePointer<AVCodecContext>?
        var scaler: OpaquePointer?
        /// Scaled, before rotation (its sides swapped for 90/270).
        var scaled = av_frame_alloc()
        /// What is encoded.
        var picture = av_frame_alloc()
        var streamIndex: Int32 = 0
        /// Decoded pictures (their `pts` is the output slot) waiting for this rung.
        let queue = FrameQueue(capacity: 4)
        /// Signalled when the encoding thread ends.
        let finished = DispatchSemaphore(value: 0)
        var running = false
        private let failureLock = NSLock()
        private var firstFailure: TranscodeError?

        init(rung: Ladder.Rung, width: Int32, height: Int32) {
            self.rung = rung
            self.width = width
            self.height = height
        }

        var failure: TranscodeError? { failureLock.withLock { firstFailure } }

        /// Records why this rung stopped and refuses further pictures.
        func fail(_ error: TranscodeError) {
            failureLock.withLock { if firstFailure == nil { firstFailure = error } }
            queue.close()
        }

        /// Queues a new reference to `source` for output slot `slot`; waits while the queue is full.
        func submit(_ source: UnsafeMutablePointer<AVFrame>, slot: Int64) throws(TranscodeError) {
            guard let copy = av_frame_clone(source) else { throw TranscodeError("cannot reference a picture for \(rung)") }
            copy.pointee.pts = slot
            guard queue.push(.frame(copy)) else { throw failure ?? TranscodeError("encoding \(rung) stopped") }
        }

        /// Waits for the encoding thread to end (once).
        func join() {
            guard running else { return }
            finished.wait()
            running = false
        }

        deinit {
            avcodec_free_context(&encoder)
            sws_freeContext(scaler)
            av_frame_free(&scaled)
            av_frame_free(&picture)
        }
    }

    /// - Parameters:
    ///   - info: what the probe found in `source`; its duration bounds the output.
    ///   - limits: the limits the probe applied, held again by every decoded frame.
    public init(
        source: String, folder: String, settings: TranscodeSettings = TranscodeSettings(), info: MediaInfo, limits: ProbeLimits = ProbeLimits()
    ) {
        // The libraries' own chatter (encoder statistics, every file the muxer opens) is not ours
        // to print; errors still are.
        av_log_set_level(AV_LOG_ERROR)
        self.source = source
        self.folder = folder
        self.settings = settings
        self.info = info
        self.limits = limits
        outputLimitSeconds = Self.outputLimit(forDuration: info.durationSeconds)
    }

    /// How long the output may run for a source the probe found `duration` seconds long: the
    /// duration plus 2 s or 2%, whichever is more (containers round and estimate durations, and a
    /// video track may run a little past the container's figure).
    static func outputLimit(forDuration duration: Double) -> Double {
        duration + max(2, duration * 0.02)
    }

    deinit {
        if let output { avformat_free_context(output) }
        avcodec_free_context(&videoDecoder)
        avcodec_free_context(&audioDecoder)
        avcodec_free_context(&audioEncoder)
        swr_free(&resampler)
        if let audioFifo { av_audio_fifo_free(audioFifo) }
        av_packet_free(&packet)
        av_frame_free(&frame)
        av_frame_free(&resampled)
    }

    /// Runs the whole transcode into `folder` (which must exist and be empty). `shouldContinue`
    /// is asked between packets; when it says no (the job's lease was lost), the transcode stops
    /// with an error and nothing is finished.
    public func run(
        progress: (TranscodeProgress) -> Void = { _ in }, shouldContinue: () -> Bool = { true }
    ) throws(TranscodeError) -> PackageSummary {
        try openInput()
        try openOutput()
        startEncoders()
        // On any way out, no rung thread outlives the transcode.
        defer { stopEncoders() }
        let started = Date()
        var emitted: Int64 = 0
        var lastReport = Date.distantPast
        while true {
            let read = av_read_frame(input, packet)
            if read == mq_averror_eof() { break }
            guard read >= 0 else { break }  // a damaged tail ends the source, as players would
            defer { av_packet_unref(packet) }
            if packet!.pointee.stream_index == videoIndex {
                try check(avcodec_send_packet(videoDecoder, packet), "decoding video", tolerateInvalidData: true)
                try drainVideoDecoder(shouldContinue)
            } else if packet!.pointee.stream_index == audioIndex, audioDecoder != nil {
                try check(avcodec_send_packet(audioDecoder, packet), "decoding audio", tolerateInvalidData: true)
                try drainAudioDecoder()
            }
            if nextSlot - emitted >= 25 || Date().timeIntervalSince(lastReport) > 1 {
                guard shouldContinue() else { throw TranscodeError("stopped before the end") }
                emitted = nextSlot
                lastReport = Date()
                let done = Double(nextSlot) / max(frameRate.seconds, 1e-9) / max(info.durationSeconds, 0.001)
                let elapsed = Date().timeIntervalSince(started)
                let speed = Double(nextSlot) / max(elapsed, 0.001)
                progress(
                    TranscodeProgress(
                        percent: min(100, done * 100), framesPerSecond: speed,
                        etaSeconds: done > 0 ? elapsed * (1 - min(done, 1)) / done : 0))
            }
        }
        _ = avcodec_send_packet(videoDecoder, nil)
        try drainVideoDecoder(shouldContinue)
        if audioDecoder != nil {
            _ = avcodec_send_packet(audioDecoder, nil)
            try drainAudioDecoder()
            try flushAudio(final: true)
            try drainEncoder(audioEncoder, flush: true, stream: audioStreamIndex)
        }
        try finishEncoders()
        // The checks a thorough probe would have made before, made on the one read of the file.
        guard nextSlot > 0 else { throw TranscodeError(ProbeRefusal.corrupt("no video frame could be decoded")) }
        do {
            try MediaProbe.checkComplete(declared: info.durationSeconds, videoEnd: videoEnd)
        } catch {
            throw TranscodeError(error)
        }
        try check(av_write_trailer(output), "finishing the package")
        try stills?.finish(durationSeconds: info.durationSeconds)
        progress(TranscodeProgress(percent: 100, framesPerSecond: Double(nextSlot) / max(Date().timeIntervalSince(started), 0.001), etaSeconds: 0))
        return try HLSPlaylists.rewrite(folder: folder, transcoder: self)
    }

    // MARK: - Set-up

    func openInput() throws(TranscodeError) {
        do {
            opened = try SourceInput.open(source)
        } catch {
            throw TranscodeError(error)
        }
        try check(avformat_find_stream_info(input, nil), "reading the source's streams")
        videoIndex = av_find_best_stream(input, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        guard videoIndex >= 0 else { throw TranscodeError("the source has no video stream") }
        videoDecoder = try openDecoder(Int(videoIndex))
        let streams = Int(input!.pointee.nb_streams)
        for i in 0..<streams where input!.pointee.streams[i]!.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_AUDIO {
            audioIndex = Int32(i)
            audioDecoder = try openDecoder(i)
            break
        }
        let start = input!.pointee.start_time
        startSeconds = start != mq_nopts_value() ? Double(start) / Double(AV_TIME_BASE) : 0
        var rate = info.video.frameRate
        if rate.numerator <= 0 || rate.denominator <= 0 { rate = Rational(25, 1) }
        if rate.value > settings.maximumFrameRate { rate = Rational(rate.numerator, rate.denominator * 2) }
        frameRate = AVRational(num: Int32(rate.numerator), den: Int32(rate.denominator))
        gop = max(1, Int64((rate.value * Double(settings.segmentSeconds)).rounded()))
    }

    func openDecoder(_ index: Int) throws(TranscodeError) -> UnsafeMutablePointer<AVCodecContext> {
        let parameters = input!.pointee.streams[index]!.pointee.codecpar
        guard let codec = avcodec_find_decoder(parameters!.pointee.codec_id), let context = avcodec_alloc_context3(codec) else {
            throw TranscodeError("no decoder for stream \(index)")
        }
        var owned: UnsafeMutablePointer<AVCodecContext>? = context
        do {
            try check(avcodec_parameters_to_context(context, parameters), "configuring a decoder")
            context.pointee.thread_count = 0
            context.pointee.pkt_timebase = input!.pointee.streams[index]!.pointee.time_base
            try check(avcodec_open2(context, codec, nil), "opening a decoder")
        } catch {
            avcodec_free_context(&owned)
            throw error
        }
        return context
    }

    func openOutput() throws(TranscodeError) {
        try check(avformat_alloc_output_context2(&output, nil, "dash", folder + "/manifest.mpd"), "creating the DASH muxer")
        let display = info.video.displaySize
        let aspect = Double(display.width) / Double(max(display.height, 1))
        // The exact display aspect ratio as a fraction: even widths cannot always hit it (854x480
        // for 16:9), so each rung's pixel aspect ratio absorbs the difference and every rung shows
        // the same picture shape (the DASH muxer insists, and players scale by it).
        let sar = info.video.sampleAspectRatio
        let sarNumerator = Int64(sar.numerator > 0 && sar.denominator > 0 ? sar.numerator : 1)
        let sarDenominator = Int64(sar.numerator > 0 && sar.denominator > 0 ? sar.denominator : 1)
        var darNumerator = Int64(info.video.width) * sarNumerator
        var darDenominator = Int64(info.video.height) * sarDenominator
        if info.video.rotation % 180 != 0 { swap(&darNumerator, &darDenominator) }
        let ladder = Ladder(heights: settings.ladderHeights, sourceHeight: display.height)
        guard let x264 = avcodec_find_encoder_by_name("libx264") else { throw TranscodeError("libavcodec was built without libx264") }
        if let top = ladder.rungs.first {
            stills = StillImages(
                folder: folder, rotation: info.video.rotation, durationSeconds: info.durationSeconds,
                posterSize: (Int32(Ladder.width(for: top.height, aspect: aspect)), Int32(top.height)), aspect: aspect,
                interval: settings.thumbnailSeconds, tileWidth: 160)
        }
        for rung in ladder.rungs {
            let width = Int32(Ladder.width(for: rung.height, aspect: aspect))
            let rendition = RenditionEncoder(rung: rung, width: width, height: Int32(rung.height))
            guard let encoder = avcodec_alloc_context3(x264) else { throw TranscodeError("cannot allocate an encoder") }
            rendition.encoder = encoder
            encoder.pointee.width = width
            encoder.pointee.height = Int32(rung.height)
            encoder.pointee.pix_fmt = AV_PIX_FMT_YUV420P
            var pixelNumerator: Int32 = 1
            var pixelDenominator: Int32 = 1
            av_reduce(&pixelNumerator, &pixelDenominator, darNumerator * Int64(rung.height), darDenominator * Int64(width), 1 << 20)
            encoder.pointee.sample_aspect_ratio = AVRational(num: pixelNumerator, den: pixelDenominator)
            encoder.pointee.time_base = AVRational(num: frameRate.den, den: frameRate.num)
            encoder.pointee.framerate = frameRate
            encoder.pointee.bit_rate = Int64(rung.bitRate)
            encoder.pointee.rc_max_rate = Int64(Double(rung.bitRate) * 1.1)
            encoder.pointee.rc_buffer_size = Int32(rung.bitRate * 2)
            encoder.pointee.gop_size = Int32(gop)
            encoder.pointee.keyint_min = Int32(gop)
            encoder.pointee.max_b_frames = 3
            encoder.pointee.thread_count = 0
            encoder.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
            av_opt_set(encoder.pointee.priv_data, "preset", settings.preset, 0)
            av_opt_set(encoder.pointee.priv_data, "profile", "high", 0)
            av_opt_set(encoder.pointee.priv_data, "forced-idr", "1", 0)
            av_opt_set(encoder.pointee.priv_data, "x264-params", "scenecut=0:open-gop=0", 0)
            try check(avcodec_open2(encoder, x264, nil), "opening libx264 for \(rung)")
            rendition.streamIndex = try addStream(for: encoder)
            renditions.append(rendition)
        }
        if audioDecoder != nil {
            guard let aac = avcodec_find_encoder(AV_CODEC_ID_AAC), let encoder = avcodec_alloc_context3(aac) else {
                throw TranscodeError("no AAC encoder")
            }
            audioEncoder = encoder
            encoder.pointee.sample_fmt = AV_SAMPLE_FMT_FLTP
            encoder.pointee.sample_rate = 48000
            av_channel_layout_default(&encoder.pointee.ch_layout, 2)
            encoder.pointee.bit_rate = Int64(settings.audioBitRate)
            encoder.pointee.time_base = AVRational(num: 1, den: 48000)
            encoder.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
            try check(avcodec_open2(encoder, aac, nil), "opening the AAC encoder")
            audioStreamIndex = try addStream(for: encoder)
            var inputLayout = AVChannelLayout()
            if audioDecoder!.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC {
                av_channel_layout_default(&inputLayout, audioDecoder!.pointee.ch_layout.nb_channels)
            } else {
                av_channel_layout_copy(&inputLayout, &audioDecoder!.pointee.ch_layout)
            }
            defer { av_channel_layout_uninit(&inputLayout) }
            try check(
                swr_alloc_set_opts2(
                    &resampler, &encoder.pointee.ch_layout, AV_SAMPLE_FMT_FLTP, 48000, &inputLayout, audioDecoder!.pointee.sample_fmt,
                    audioDecoder!.pointee.sample_rate, 0, nil), "configuring the resampler")
            try check(swr_init(resampler), "starting the resampler")
            audioFifo = av_audio_fifo_alloc(AV_SAMPLE_FMT_FLTP, 2, 4096)
        }
        var options: OpaquePointer? = nil
        defer { av_dict_free(&options) }
        av_dict_set(&options, "seg_duration", String(settings.segmentSeconds), 0)
        av_dict_set(&options, "use_template", "1", 0)
        av_dict_set(&options, "use_timeline", "1", 0)
        av_dict_set(&options, "hls_playlist", "1", 0)
        av_dict_set(&options, "adaptation_sets", audioEncoder == nil ? "id=0,streams=v" : "id=0,streams=v id=1,streams=a", 0)
        try check(avformat_write_header(output, &options), "starting the package")
    }

    func addStream(for encoder: UnsafeMutablePointer<AVCodecContext>) throws(TranscodeError) -> Int32 {
        guard let stream = avformat_new_stream(output, nil) else { throw TranscodeError("cannot add a stream to the package") }
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, encoder), "describing a stream")
        stream.pointee.time_base = encoder.pointee.time_base
        stream.pointee.avg_frame_rate = encoder.pointee.framerate
        stream.pointee.sample_aspect_ratio = encoder.pointee.sample_aspect_ratio
        return stream.pointee.index
    }

    // MARK: - Video

    /// Hands each decoded frame to the rungs. `shouldContinue` is asked before each picture
    /// submitted, repeats included.
    func drainVideoDecoder(_ shouldContinue: () -> Bool) throws(TranscodeError) {
        while true {
            let received = avcodec_receive_frame(videoDecoder, frame)
            if received == mq_averror(EAGAIN) || received == mq_averror_eof() { return }
            // A damaged picture is skipped (the constant-rate output repeats its neighbour); a source
            // that is damaged throughout ends up refused by the completeness check.
            if received == mq_averror_invalid_data() { continue }
            guard received >= 0 else { throw TranscodeError("decoding video failed (\(Self.errorText(received)))") }
            defer { av_frame_unref(frame) }
            let timeBase = input!.pointee.streams[Int(videoIndex)]!.pointee.time_base
            let timestamp = frame!.pointee.best_effort_timestamp != mq_nopts_value() ? frame!.pointee.best_effort_timestamp : frame!.pointee.pts
            let seconds = timestamp == mq_nopts_value() ? frameRate.seconds * Double(nextSlot) : Double(timestamp) * av_q2d(timeBase) - startSeconds
            do {
                try limits.checkDisplaySize(VideoInfo.displaySize(of: frame!, rotation: info.video.rotation), at: seconds.isFinite ? seconds : nil)
            } catch {
                throw TranscodeError(error)
            }
            // Past the output's end (or no time at all): dropped, before it can extend anything.
            guard seconds.isFinite, seconds < outputLimitSeconds else { continue }
            // Constant frame rate out: the slot this frame belongs to; earlier slots still empty
            // repeat it, a frame whose slot is taken is dropped. The slot is below the limit's
            // (a few hours of frames at most), so it fits in Int64.
            if info.video.interlaced || frame!.pointee.interlaced_frame != 0 { _ = Deinterlacer.deinterlace(frame!) }
            videoEnd = max(videoEnd, seconds + frameRate.seconds)
            try stills?.offer(frame!, at: seconds)
            let slot = seconds <= 0 ? 0 : Int64((seconds / frameRate.seconds).rounded())
            if slot < nextSlot && nextSlot > 0 { continue }
            while nextSlot <= slot {
                guard shouldContinue() else { throw TranscodeError("stopped before the end") }
                for rendition in renditions { try rendition.submit(frame!, slot: nextSlot) }
                nextSlot += 1
            }
        }
    }

    // MARK: - Rung threads

    func startEncoders() {
        for rendition in renditions {
            let work = UncheckedSendable((self, rendition))
            let thread = Thread { work.value.0.encodingLoop(work.value.1) }
            thread.name = "encode \(rendition.rung.height)p"
            rendition.running = true
            thread.start()
        }
    }

    /// A rung's thread: encode each queued picture until the end (flush) or a failure.
    func encodingLoop(_ rendition: RenditionEncoder) {
        defer { rendition.finished.signal() }
        while let item = rendition.queue.pop() {
            switch item {
            case .frame(let picture):
                defer { FrameQueue.free(picture) }
                do throws(TranscodeError) {
                    try encode(picture, into: rendition, slot: picture.pointee.pts)
                } catch {
                    rendition.fail(error)
                    return
                }
            case .end:
                do throws(TranscodeError) {
                    try drainEncoder(rendition.encoder, flush: true, stream: rendition.streamIndex)
                } catch {
                    rendition.fail(error)
                }
                return
            }
        }
    }

    /// Ends every rung (flushing its encoder) and waits; the first failure is thrown.
    func finishEncoders() throws(TranscodeError) {
        for rendition in renditions { rendition.queue.push(.end) }
        for rendition in renditions { rendition.join() }
        if let failure = renditions.lazy.compactMap(\.failure).first { throw failure }
    }

    /// Stops rungs still running (the transcode failed or was stopped) and waits for them.
    func stopEncoders() {
        for rendition in renditions where rendition.running { rendition.queue.close() }
        for rendition in renditions { rendition.join() }
    }

    /// Scales (and rotates) `source` to the rung and encodes it; on the rung's own thread.
    /// `source` is this rung's own reference, which it may change.
    func encode(_ source: UnsafeMutablePointer<AVFrame>, into rendition: RenditionEncoder, slot: Int64) throws(TranscodeError) {
        let rotation = info.video.rotation
        if rotation == 0 && source.pointee.width == rendition.width && source.pointee.height == rendition.height
            && source.pointee.format == AV_PIX_FMT_YUV420P.rawValue
        {
            // The top rung at the source's own size and format: hand the decoded picture to the
            // encoder as it is, no scaling pass.
            source.pointee.pts = slot
            source.pointee.pict_type = slot % gop == 0 ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE
            source.pointee.sample_aspect_ratio = rendition.encoder!.pointee.sample_aspect_ratio
            try check(avcodec_send_frame(rendition.encoder, source), "encoding \(rendition.rung)")
            try drainEncoder(rendition.encoder, flush: false, stream: rendition.streamIndex)
            return
        }
        let sideways = rotation == 90 || rotation == 270
        let scaledWidth = sideways ? rendition.height : rendition.width
        let scaledHeight = sideways ? rendition.width : rendition.height
        let target: UnsafeMutablePointer<AVFrame> = rotation == 0 ? rendition.picture! : rendition.scaled!
        try prepare(target, width: scaledWidth, height: scaledHeight)
        rendition.scaler = sws_getCachedContext(
            rendition.scaler, source.pointee.width, source.pointee.height, AVPixelFormat(rawValue: source.pointee.format), scaledWidth,
            scaledHeight, AV_PIX_FMT_YUV420P, SWS_BICUBIC, nil, nil, nil)
        guard rendition.scaler != nil else { throw TranscodeError("cannot scale \(source.pointee.width)x\(source.pointee.height) to \(rendition.rung)") }
        try check(sws_scale_frame(rendition.scaler, target, source), "scaling to \(rendition.rung)")
        if rotation != 0 {
            try prepare(rendition.picture!, width: rendition.width, height: rendition.height)
            PlaneRotation.rotate(rendition.scaled!, into: rendition.picture!, clockwise: rotation)
        }
        let picture = rendition.picture!
        picture.pointee.pts = slot
        picture.pointee.pict_type = slot % gop == 0 ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE
        try check(avcodec_send_frame(rendition.encoder, picture), "encoding \(rendition.rung)")
        try drainEncoder(rendition.encoder, flush: false, stream: rendition.streamIndex)
    }

    /// Gives `frame` a writable buffer of the size (the encoder may still hold the previous one).
    func prepare(_ frame: UnsafeMutablePointer<AVFrame>, width: Int32, height: Int32) throws(TranscodeError) {
        if frame.pointee.width != width || frame.pointee.height != height || frame.pointee.buf.0 == nil {
            av_frame_unref(frame)
            frame.pointee.width = width
            frame.pointee.height = height
            frame.pointee.format = AV_PIX_FMT_YUV420P.rawValue
            try check(av_frame_get_buffer(frame, 0), "allocating a picture")
        } else {
            try check(av_frame_make_writable(frame), "allocating a picture")
        }
    }

    // MARK: - Audio

    func drainAudioDecoder() throws(TranscodeError) {
        while true {
            let received = avcodec_receive_frame(audioDecoder, frame)
            if received == mq_averror(EAGAIN) || received == mq_averror_eof() { return }
            guard received >= 0 else { throw TranscodeError("decoding audio failed (\(Self.errorText(received)))") }
            defer { av_frame_unref(frame) }
            if !audioStarted {
                audioStarted = true
                let timeBase = input!.pointee.streams[Int(audioIndex)]!.pointee.time_base
                let pts = frame!.pointee.best_effort_timestamp
                let seconds = Double(pts) * av_q2d(timeBase) - startSeconds
                // Clamped before the conversion: a hostile timestamp may be anywhere in Int64.
                if pts != mq_nopts_value() && seconds.isFinite {
                    audioSamples = Int64((min(max(seconds, 0), outputLimitSeconds) * 48000).rounded())
                }
            }
            av_frame_unref(resampled)
            resampled!.pointee.sample_rate = 48000
            resampled!.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
            av_channel_layout_default(&resampled!.pointee.ch_layout, 2)
            try check(swr_convert_frame(resampler, resampled, frame), "resampling audio")
            try queueResampled()
            try flushAudio(final: false)
        }
    }

    func queueResampled() throws(TranscodeError) {
        guard resampled!.pointee.nb_samples > 0 else { return }
        let planes = UnsafeMutableRawPointer(resampled!.pointee.extended_data!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
        guard av_audio_fifo_write(audioFifo, planes, resampled!.pointee.nb_samples) >= 0 else { throw TranscodeError("audio queue full") }
    }

    /// Encodes whole 1,024-sample AAC frames from the queue (and, at the end, what remains).
    func flushAudio(final: Bool) throws(TranscodeError) {
        if final {
            // Samples still inside the resampler.
            av_frame_unref(resampled)
            resampled!.pointee.sample_rate = 48000
            resampled!.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
            av_channel_layout_default(&resampled!.pointee.ch_layout, 2)
            if swr_convert_frame(resampler, resampled, nil) >= 0 { try queueResampled() }
        }
        let frameSize = Int32(audioEncoder!.pointee.frame_size > 0 ? audioEncoder!.pointee.frame_size : 1024)
        // Samples past the output's end are dropped, as video frames are.
        let sampleLimit = Int64((outputLimitSeconds * 48000).rounded(.down))
        while av_audio_fifo_size(audioFifo) >= frameSize || (final && av_audio_fifo_size(audioFifo) > 0) {
            guard audioSamples < sampleLimit else {
                av_audio_fifo_drain(audioFifo, av_audio_fifo_size(audioFifo))
                return
            }
            let count = min(frameSize, av_audio_fifo_size(audioFifo))
            var chunk = av_frame_alloc()
            defer { av_frame_free(&chunk) }
            chunk!.pointee.nb_samples = count
            chunk!.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
            chunk!.pointee.sample_rate = 48000
            av_channel_layout_default(&chunk!.pointee.ch_layout, 2)
            try check(av_frame_get_buffer(chunk, 0), "allocating audio")
            let planes = UnsafeMutableRawPointer(chunk!.pointee.extended_data!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
            _ = av_audio_fifo_read(audioFifo, planes, count)
            chunk!.pointee.pts = audioSamples
            audioSamples += Int64(count)
            try check(avcodec_send_frame(audioEncoder, chunk), "encoding audio")
            try drainEncoder(audioEncoder, flush: false, stream: audioStreamIndex)
        }
    }

    // MARK: - Packets

    func drainEncoder(_ encoder: UnsafeMutablePointer<AVCodecContext>?, flush: Bool, stream: Int32) throws(TranscodeError) {
        if flush { _ = avcodec_send_frame(encoder, nil) }
        var out = av_packet_alloc()
        defer { av_packet_free(&out) }
        while true {
            let received = avcodec_receive_packet(encoder, out)
            if received == mq_averror(EAGAIN) || received == mq_averror_eof() { return }
            guard received >= 0 else { throw TranscodeError("encoding failed (\(Self.errorText(received)))") }
            out!.pointee.stream_index = stream
            av_packet_rescale_ts(out, encoder!.pointee.time_base, output!.pointee.streams[Int(stream)]!.pointee.time_base)
            let written = muxLock.withLock { av_interleaved_write_frame(output, out) }
            try check(written, "writing the package")
        }
    }

    func check(_ result: Int32, _ doing: String, tolerateInvalidData: Bool = false) throws(TranscodeError) {
        if result >= 0 || (tolerateInvalidData && result == mq_averror_invalid_data()) { return }
        throw TranscodeError("\(doing) failed (\(Self.errorText(result)))")
    }

    static func errorText(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        return String(cString: mq_error_string(code, &buffer, buffer.count))
    }
}

/// A value handed to a thread that alone uses it from then on.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension AVRational {
    /// One frame's duration in seconds when this is a frame rate.
    var seconds: Double { num == 0 ? 0 : Double(den) / Double(num) }
}
