import CFFmpeg
import Glibc

/// A source file opened for demuxing: the one way probe and transcode (so `marquee probe`,
/// `marquee package` and the ingest workers) get an `AVFormatContext` for a source.
///
/// Why not `avformat_open_input(path)`: libavformat then picks whatever demuxer the content
/// matches, and several demuxers open the other files or URLs the "movie" names. A publisher could
/// upload a short text playlist (HLS is detected without a `.m3u8` name) whose segment lines name
/// another title's files on the same machine by absolute path, `../` path or `file:` URL, and the
/// worker would package that title into the publisher's own. DASH manifests, concat/ffconcat lists
/// and image2 sequences (a `%03d` in the path) do the same.
///
/// So the file is read only through a descriptor opened here, wrapped in our own `AVIOContext`; the
/// format is detected on that context from the content alone (the name plays no part) and must be
/// one of `containers`; the format context's `io_open` refuses every other file or URL (an allowed
/// demuxer's references, such as MP4 data references, find nothing), and the format and protocol
/// whitelists say the same to libavformat. The context, the I/O context and its buffer, and the
/// descriptor are freed with this object on every path.
///
/// Cost: one open, one fstat and one read of up to 1 MiB to detect the format (libavformat keeps
/// what it read and replays it to the demuxer).
final class SourceInput {
    /// The demuxers a source may use: containers that hold a whole movie in one file and never
    /// read another file or URL.
    /// - `mov,mp4,m4a,3gp,3g2,mj2`: MP4 and QuickTime, what cameras, phones and editors write.
    ///   Data references to other files exist in the format, but FFmpeg follows them only when
    ///   asked (`enable_drefs`, off) and through `io_open`, which refuses here.
    /// - `matroska,webm`: Matroska and WebM; FFmpeg does not follow linked segments.
    /// - `mpegts`: broadcast and camera transport streams (`.ts`, `.m2ts`, `.mts`).
    /// - `mpeg`: MPEG program streams (`.mpg`, `.vob` from DVDs and older editors).
    /// - `avi`: AVI, from older cameras and screen recorders.
    /// - `flv`: Flash video, still exported by some streaming and recording tools.
    /// Left out on purpose: playlists and manifests (`hls`, `dash`), lists (`concat`), image
    /// sequences (`image2` and every `*_pipe` image demuxer), devices and generators (`lavfi`), raw
    /// elementary streams (no timestamps), and the rest until a publisher needs one.
    static let containers: Set<String> = ["mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mpegts", "mpeg", "avi", "flv"]

    /// libavformat's own check (`format_whitelist`) of the same list: comma-separated names.
    static let formatWhitelist = containers.sorted().joined(separator: ",")

    /// Size of the buffer libavformat reads the file through.
    static let bufferSize: Int32 = 64 * 1024

    /// The opened format context (its streams not yet analysed); valid while this object lives.
    var format: UnsafeMutablePointer<AVFormatContext> { context! }
    private var context: UnsafeMutablePointer<AVFormatContext>?
    private var io: UnsafeMutablePointer<AVIOContext>?
    private let file: OpenFile

    private init(file: OpenFile) {
        self.file = file
    }

    deinit {
        // The format context first (it uses the I/O context), then the I/O context's buffer (which
        // libavformat may have replaced: free the one it holds now), the context, and the file.
        avformat_close_input(&context)
        if io != nil {
            av_freep(&io!.pointee.buffer)
            avio_context_free(&io)
        }
    }

    /// Opens `path` and checks its container.
    /// - Throws: `ProbeRefusal.notMedia` when the file cannot be opened, is not a regular file, or
    ///   matches no format; `.unsupportedContainer` naming the format when it is not a single-file
    ///   movie container.
    static func open(_ path: String) throws(ProbeRefusal) -> SourceInput {
        let input = SourceInput(file: try OpenFile(path))
        guard let buffer = av_malloc(Int(bufferSize)) else { throw .notMedia("out of memory") }
        let opaque = Unmanaged.passUnretained(input.file).toOpaque()
        input.io = avio_alloc_context(
            buffer.assumingMemoryBound(to: UInt8.self), bufferSize, 0, opaque, { OpenFile.read($0, into: $1, size: $2) }, nil,
            { OpenFile.seek($0, to: $1, whence: $2) })
        guard let io = input.io else {
            av_free(buffer)
            throw .notMedia("out of memory")
        }

        // Detected from the bytes alone (no file name: a name must not steer the choice).
        var detected: UnsafePointer<AVInputFormat>? = nil
        let score = av_probe_input_buffer2(io, &detected, nil, nil, 0, 0)
        guard score >= 0, let detected else { throw .notMedia(MediaProbe.errorText(score < 0 ? score : mq_averror_invalid_data())) }
        let name = String(cString: detected.pointee.name)
        guard containers.contains(name), detected.pointee.flags & AVFMT_NOFILE == 0 else { throw .unsupportedContainer(name) }

        guard let context = avformat_alloc_context() else { throw .notMedia("out of memory") }
        context.pointee.pb = io
        context.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        // A source never opens another file or URL.
        context.pointee.io_open = { _, _, _, _, _ in mq_averror(EPERM) }
        var options: OpaquePointer? = nil
        defer { av_dict_free(&options) }
        av_dict_set(&options, "format_whitelist", formatWhitelist, 0)
        // No protocol at all: the source is read through `io`, which is no protocol.
        av_dict_set(&options, "protocol_whitelist", "", 0)
        var opened: UnsafeMutablePointer<AVFormatContext>? = context
        // On failure libavformat frees the context (not `io`, which is ours) and sets it to nil.
        let result = avformat_open_input(&opened, "", detected, &options)
        guard result >= 0, opened != nil else { throw .notMedia(MediaProbe.errorText(result)) }
        input.context = opened
        return input
    }
}

/// A read-only descriptor for a regular file, closed when released.
private final class OpenFile {
    let descriptor: Int32

    init(_ path: String) throws(ProbeRefusal) {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .notMedia(String(cString: strerror(errno))) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            // A FIFO, device or directory: no length, or no end (/dev/zero).
            throw .notMedia("not a regular file")
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// The descriptor of the `OpenFile` an `AVIOContext`'s opaque pointer stands for.
    static func descriptor(_ opaque: UnsafeMutableRawPointer?) -> Int32 {
        Unmanaged<OpenFile>.fromOpaque(opaque!).takeUnretainedValue().descriptor
    }

    /// `AVIOContext` read callback: up to `size` bytes from the file, `AVERROR_EOF` at its end.
    static func read(_ opaque: UnsafeMutableRawPointer?, into buffer: UnsafeMutablePointer<UInt8>?, size: Int32) -> Int32 {
        let descriptor = descriptor(opaque)
        while true {
            let count = Glibc.read(descriptor, buffer, Int(size))
            if count > 0 { return Int32(count) }
            if count == 0 { return mq_averror_eof() }
            if errno != EINTR { return mq_averror(errno) }
        }
    }

    /// `AVIOContext` seek callback: `lseek`, or the file's size for `AVSEEK_SIZE`.
    static func seek(_ opaque: UnsafeMutableRawPointer?, to offset: Int64, whence: Int32) -> Int64 {
        let descriptor = descriptor(opaque)
        if whence & AVSEEK_SIZE != 0 {
            var status = stat()
            return fstat(descriptor, &status) == 0 ? Int64(status.st_size) : Int64(mq_averror(errno))
        }
        let position = lseek(descriptor, off_t(offset), whence & ~AVSEEK_FORCE)
        return position >= 0 ? Int64(position) : Int64(mq_averror(errno))
    }
}
