import CFFmpeg
import Foundation

/// A generated test clip, made with the media libraries alone (no ffmpeg CLI): 75% colour bars, a
/// box that crosses the picture every few seconds and a running `MM:SS.FF` clock over a dark band,
/// with a stereo 440 Hz tone that beeps at 1 kHz on each whole second (so picture and sound can be
/// checked for sync by eye and ear). H.264 (libx264) and AAC in MP4: what a publisher would upload.
///
/// `marquee dev` ingests one as its demo title. Drawing is row copies and rectangle fills, so even
/// a debug build makes a minute of 720p in seconds; libx264 does the rest.
public enum TestClip {
    public struct Options: Sendable {
        public var width = 1280
        public var height = 720
        public var framesPerSecond = 25
        public var seconds = 60
        /// libx264's constant quality (lower is better); the clip is a mezzanine, so high quality.
        public var quality = 18

        public init(width: Int = 1280, height: Int = 720, framesPerSecond: Int = 25, seconds: Int = 60) {
            self.width = width
            self.height = height
            self.framesPerSecond = framesPerSecond
            self.seconds = seconds
        }
    }

    /// Writes the clip to `path` (through `path.partial`, renamed when complete, so a reader never
    /// sees half a file).
    public static func write(to path: String, options: Options = Options()) throws(TranscodeError) {
        guard options.width >= 64, options.height >= 64, options.width % 2 == 0, options.height % 2 == 0,
            (1...120).contains(options.framesPerSecond), options.seconds > 0
        else {
            throw TranscodeError("a test clip needs an even size of at least 64x64, 1-120 frames per second and a positive length")
        }
        av_log_set_level(AV_LOG_ERROR)
        let partial = path + ".partial"
        let writer = ClipWriter(options: options)
        do {
            try writer.open(partial)
            try writer.writeAll()
            writer.close()
        } catch {
            writer.close()
            unlink(partial)
            throw error
        }
        guard rename(partial, path) == 0 else {
            unlink(partial)
            throw TranscodeError("cannot move the test clip into place at \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// The muxer and encoders of one test clip.
private final class ClipWriter {
    let options: TestClip.Options
    var output: UnsafeMutablePointer<AVFormatContext>?
    var video: UnsafeMutablePointer<AVCodecContext>?
    var audio: UnsafeMutablePointer<AVCodecContext>?
    var picture: UnsafeMutablePointer<AVFrame>?
    var sound: UnsafeMutablePointer<AVFrame>?
    var opened = false
    var headerWritten = false

    init(options: TestClip.Options) {
        self.options = options
    }

    func open(_ path: String) throws(TranscodeError) {
        try check(avformat_alloc_output_context2(&output, nil, "mp4", path), "creating the MP4 muxer")
        guard let x264 = avcodec_find_encoder_by_name("libx264") else { throw TranscodeError("libavcodec was built without libx264") }
        guard let v = avcodec_alloc_context3(x264) else { throw TranscodeError("cannot allocate an encoder") }
        video = v
        v.pointee.width = Int32(options.width)
        v.pointee.height = Int32(options.height)
        v.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        v.pointee.time_base = AVRational(num: 1, den: Int32(options.framesPerSecond))
        v.pointee.framerate = AVRational(num: Int32(options.framesPerSecond), den: 1)
        v.pointee.gop_size = Int32(options.framesPerSecond * 2)
        v.pointee.thread_count = 0
        v.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        av_opt_set(v.pointee.priv_data, "preset", "veryfast", 0)
        av_opt_set(v.pointee.priv_data, "crf", String(options.quality), 0)
        try check(avcodec_open2(v, x264, nil), "opening libx264")
        try addStream(v)

        guard let aac = avcodec_find_encoder(AV_CODEC_ID_AAC), let a = avcodec_alloc_context3(aac) else {
            throw TranscodeError("no AAC encoder")
        }
        audio = a
        a.pointee.sample_fmt = AV_SAMPLE_FMT_FLTP
        a.pointee.sample_rate = 48000
        av_channel_layout_default(&a.pointee.ch_layout, 2)
        a.pointee.bit_rate = 160_000
        a.pointee.time_base = AVRational(num: 1, den: 48000)
        a.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        try check(avcodec_open2(a, aac, nil), "opening the AAC encoder")
        try addStream(a)

        try check(avio_open(&output!.pointee.pb, path, AVIO_FLAG_WRITE), "creating \(path)")
        opened = true
        try check(avformat_write_header(output, nil), "starting the MP4 file")
        headerWritten = true

        picture = av_frame_alloc()
        picture!.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        picture!.pointee.width = v.pointee.width
        picture!.pointee.height = v.pointee.height
        try check(av_frame_get_buffer(picture, 0), "allocating a picture")
        sound = av_frame_alloc()
        sound!.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
        sound!.pointee.sample_rate = 48000
        sound!.pointee.nb_samples = a.pointee.frame_size > 0 ? a.pointee.frame_size : 1024
        av_channel_layout_default(&sound!.pointee.ch_layout, 2)
        try check(av_frame_get_buffer(sound, 0), "allocating audio")
    }

    func addStream(_ encoder: UnsafeMutablePointer<AVCodecContext>) throws(TranscodeError) {
        guard let stream = avformat_new_stream(output, nil) else { throw TranscodeError("cannot add a stream") }
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, encoder), "describing a stream")
        stream.pointee.time_base = encoder.pointee.time_base
        stream.pointee.avg_frame_rate = encoder.pointee.framerate
    }

    /// Encodes every picture and every audio frame, interleaved by time, then the trailer.
    func writeAll() throws(TranscodeError) {
        let frames = Int64(options.seconds * options.framesPerSecond)
        let samples = Int64(options.seconds) * 48000
        let painter = PicturePainter(width: options.width, height: options.height)
        var frame: Int64 = 0
        var sample: Int64 = 0
        while frame < frames || sample < samples {
            // Whichever stream is behind in time goes next.
            let videoSeconds = Double(frame) / Double(options.framesPerSecond)
            let audioSeconds = Double(sample) / 48000
            if frame < frames && (sample >= samples || videoSeconds <= audioSeconds) {
                try check(av_frame_make_writable(picture), "reusing a picture")
                painter.paint(picture!, frame: Int(frame), framesPerSecond: options.framesPerSecond)
                picture!.pointee.pts = frame
                try check(avcodec_send_frame(video, picture), "encoding video")
                try drain(video!, stream: 0)
                frame += 1
            } else {
                try check(av_frame_make_writable(sound), "reusing audio")
                let count = Int(min(Int64(sound!.pointee.nb_samples), samples - sample))
                sound!.pointee.nb_samples = Int32(count)
                Self.tone(sound!, from: sample, count: count)
                sound!.pointee.pts = sample
                try check(avcodec_send_frame(audio, sound), "encoding audio")
                try drain(audio!, stream: 1)
                sample += Int64(count)
            }
        }
        _ = avcodec_send_frame(video, nil)
        try drain(video!, stream: 0)
        _ = avcodec_send_frame(audio, nil)
        try drain(audio!, stream: 1)
        try check(av_write_trailer(output), "finishing the MP4 file")
    }

    /// 440 Hz at -20 dBFS, 1 kHz for the first 100 ms of every second.
    static func tone(_ frame: UnsafeMutablePointer<AVFrame>, from first: Int64, count: Int) {
        let left = UnsafeMutableRawPointer(frame.pointee.data.0!).assumingMemoryBound(to: Float.self)
        let right = UnsafeMutableRawPointer(frame.pointee.data.1!).assumingMemoryBound(to: Float.self)
        for i in 0..<count {
            let n = first + Int64(i)
            let inSecond = n % 48000
            let frequency: Double = inSecond < 4800 ? 1000 : 440
            let value = Float(0.1 * sin(2 * Double.pi * frequency * Double(n) / 48000))
            left[i] = value
            right[i] = value
        }
    }

    func drain(_ encoder: UnsafeMutablePointer<AVCodecContext>, stream: Int32) throws(TranscodeError) {
        var packet = av_packet_alloc()
        defer { av_packet_free(&packet) }
        while true {
            let received = avcodec_receive_packet(encoder, packet)
            if received == mq_averror(EAGAIN) || received == mq_averror_eof() { return }
            try check(received, "encoding")
            packet!.pointee.stream_index = stream
            av_packet_rescale_ts(packet, encoder.pointee.time_base, output!.pointee.streams[Int(stream)]!.pointee.time_base)
            try check(av_interleaved_write_frame(output, packet), "writing the MP4 file")
        }
    }

    func close() {
        av_frame_free(&picture)
        av_frame_free(&sound)
        avcodec_free_context(&video)
        avcodec_free_context(&audio)
        if opened { avio_closep(&output!.pointee.pb) }
        avformat_free_context(output)
        output = nil
    }

    func check(_ result: Int32, _ doing: String) throws(TranscodeError) {
        guard result < 0 else { return }
        throw TranscodeError("\(doing) failed (\(Transcoder.errorText(result)))")
    }
}

/// Paints the test picture into YUV 4:2:0 planes (BT.601 limited range).
private struct PicturePainter {
    let width: Int
    let height: Int
    /// One row of the bars, per plane (chroma rows are half as wide).
    let barsY: [UInt8]
    let barsU: [UInt8]
    let barsV: [UInt8]
    /// Where the bars end and the dark band with the box and clock begins (even).
    let band: Int

    /// 75% bars: white, yellow, cyan, green, magenta, red, blue.
    static let bars: [(y: UInt8, u: UInt8, v: UInt8)] = [
        (180, 128, 128), (162, 44, 142), (131, 156, 44), (112, 72, 58), (84, 184, 198), (65, 100, 212), (35, 212, 114),
    ]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        band = (height * 2 / 3) & ~1
        var y = [UInt8](repeating: 0, count: width)
        var u = [UInt8](repeating: 0, count: width / 2)
        var v = [UInt8](repeating: 0, count: width / 2)
        for x in 0..<width {
            let bar = Self.bars[min(x * Self.bars.count / width, Self.bars.count - 1)]
            y[x] = bar.y
            if x % 2 == 0 {
                u[x / 2] = bar.u
                v[x / 2] = bar.v
            }
        }
        barsY = y
        barsU = u
        barsV = v
    }

    func paint(_ frame: UnsafeMutablePointer<AVFrame>, frame index: Int, framesPerSecond: Int) {
        let planes = [frame.pointee.data.0!, frame.pointee.data.1!, frame.pointee.data.2!]
        let strides = [Int(frame.pointee.linesize.0), Int(frame.pointee.linesize.1), Int(frame.pointee.linesize.2)]
        for (plane, row) in [barsY, barsU, barsV].enumerated() {
            let rows = plane == 0 ? height : height / 2
            let bandRow = plane == 0 ? band : band / 2
            let fill: Int32 = plane == 0 ? 24 : 128
            row.withUnsafeBytes { bytes in
                for r in 0..<rows {
                    let line = planes[plane] + r * strides[plane]
                    if r < bandRow {
                        memcpy(line, bytes.baseAddress!, bytes.count)
                    } else {
                        memset(line, fill, bytes.count)
                    }
                }
            }
        }
        // The box crosses the band's width every four seconds.
        let box = max(16, (height - band) / 4) & ~1
        let travel = width - box
        let step = Double(travel) / Double(framesPerSecond * 4)
        let x = Int(Double(index % (framesPerSecond * 4)) * step) & ~1
        fill(planes, strides, x: x, y: band + 8, width: box, height: box, luma: 210)
        // The clock: MM:SS.FF, frames within the second.
        let seconds = index / framesPerSecond
        let text = [seconds / 600 % 10, seconds / 60 % 10, -1, seconds % 60 / 10, seconds % 10, -2, index % framesPerSecond / 10, index % framesPerSecond % 10]
        let digitHeight = max(20, (height - band - box - 24) & ~1)
        let digitWidth = (digitHeight / 2) & ~1
        let thickness = max(2, (digitHeight / 10) & ~1)
        let textWidth = 6 * (digitWidth + thickness * 2) + 2 * thickness * 3
        var cursor = (width - textWidth) / 2 & ~1
        let top = band + box + 16
        for symbol in text {
            switch symbol {
            case -1:
                fill(planes, strides, x: cursor, y: top + digitHeight / 4, width: thickness, height: thickness, luma: 235)
                fill(planes, strides, x: cursor, y: top + digitHeight * 3 / 4, width: thickness, height: thickness, luma: 235)
                cursor += thickness * 3
            case -2:
                fill(planes, strides, x: cursor, y: top + digitHeight - thickness, width: thickness, height: thickness, luma: 235)
                cursor += thickness * 3
            default:
                drawDigit(planes, strides, symbol, x: cursor, y: top, width: digitWidth, height: digitHeight, thickness: thickness)
                cursor += digitWidth + thickness * 2
            }
        }
    }

    /// Segments a-g of a seven-segment display, per digit.
    static let segments: [[Bool]] = [
        [true, true, true, true, true, true, false], [false, true, true, false, false, false, false],
        [true, true, false, true, true, false, true], [true, true, true, true, false, false, true],
        [false, true, true, false, false, true, true], [true, false, true, true, false, true, true],
        [true, false, true, true, true, true, true], [true, true, true, false, false, false, false],
        [true, true, true, true, true, true, true], [true, true, true, true, false, true, true],
    ]

    func drawDigit(
        _ planes: [UnsafeMutablePointer<UInt8>], _ strides: [Int], _ digit: Int, x: Int, y: Int, width: Int, height: Int, thickness t: Int
    ) {
        let on = Self.segments[digit]
        let half = (height / 2) & ~1
        let rects: [(Int, Int, Int, Int)] = [
            (x, y, width, t), (x + width - t, y, t, half), (x + width - t, y + half, t, height - half), (x, y + height - t, width, t),
            (x, y + half, t, height - half), (x, y, t, half), (x, y + half - t / 2, width, t),
        ]
        for (index, rect) in rects.enumerated() where on[index] {
            fill(planes, strides, x: rect.0, y: rect.1, width: rect.2, height: rect.3, luma: 235)
        }
    }

    /// A grey rectangle (neutral chroma), clipped to the picture.
    func fill(_ planes: [UnsafeMutablePointer<UInt8>], _ strides: [Int], x: Int, y: Int, width w: Int, height h: Int, luma: UInt8) {
        let left = max(0, x) & ~1
        let top = max(0, y) & ~1
        let right = min(self.width, x + w)
        let bottom = min(self.height, y + h)
        guard right > left, bottom > top else { return }
        for r in top..<bottom { memset(planes[0] + r * strides[0] + left, Int32(luma), right - left) }
        for r in (top / 2)..<((bottom + 1) / 2) {
            memset(planes[1] + r * strides[1] + left / 2, 128, (right - left + 1) / 2)
            memset(planes[2] + r * strides[2] + left / 2, 128, (right - left + 1) / 2)
        }
    }
}
