import CLinux
import Glibc
import MarqueeGateway
import MarqueeHTTP

/// One GET on one upstream connection, blocking with a deadline: send the request, read the head
/// (skipping 1xx interim answers), then write a 200's body to a new file, framed by its
/// Content-Length, chunked coding or the close. Only a whole body counts: a short one, a malformed
/// one or a write error removes the file. A 304 (to a conditional refresh) has no body to keep.
struct UpstreamExchange {
    enum Result: Equatable {
        /// The exchange ended as `attempt` says; `reusable`: the connection may carry another request.
        case complete(HTTPUpstreamSource.Attempt, reusable: Bool)
        /// The upstream closed (or reset) the connection before any byte of an answer: on a pooled
        /// connection this is a stale link, and the request may be sent again.
        case closedBeforeAnswer
        case failed(HTTPUpstreamSource.Attempt)
    }

    static let bufferBytes = 64 * 1024
    static let maxHeadBytes = 32 * 1024

    let fd: Int32
    let deadline: Int64

    func run(request: [UInt8], into path: String, fill: ObjectFill? = nil) -> Result {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferBytes, alignment: 16)
        defer { buffer.deallocate() }
        if let failure = send(request) { return failure }

        // The head.
        var received = 0
        var final: ResponseHead?
        while final == nil {
            switch receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[received...])) {
            case .bytes(let n):
                received += n
            case .closed, .error:
                return received == 0 ? .closedBeforeAnswer : .failed(.unavailable("closed the connection in the middle of its response head"))
            case .timedOut:
                return .failed(.timedOut)
            }
            parsing: while true {
                switch ResponseParser.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<received]), maxHeadBytes: Self.maxHeadBytes) {
                case .incomplete:
                    if received == buffer.count { return .failed(.unavailable("sent a response head larger than \(Self.maxHeadBytes) bytes")) }
                    break parsing
                case .failed:
                    return .failed(.unavailable("sent a malformed response head"))
                case .complete(let found) where found.isInterim:
                    // 1xx (100 Continue, 103 Early Hints): the final answer follows.
                    received -= found.headLength
                    memmove(buffer.baseAddress!, buffer.baseAddress! + found.headLength, received)
                    if received == 0 { break parsing }
                case .complete(let found):
                    final = found
                    break parsing
                }
            }
        }
        let head = final!

        let facts = ResponseFacts(head: UnsafeRawBufferPointer(rebasing: buffer[0..<head.headLength]))
        switch head.status {
        case 200:
            break
        case 304:
            // The copy the request named in If-None-Match / If-Modified-Since is still current.
            return .complete(.notModified(facts), reusable: !head.closes)
        case 404, 410:
            return .complete(.notFound, reusable: false)
        case 500...599:
            return .failed(.unavailable("answered \(head.status)"))
        default:
            return .failed(.refused("the upstream answered \(head.status)"))
        }

        // The file's modification time, decided now so a streamed response's ETag and
        // Last-Modified are those of the file once whole: the upstream's, else this moment.
        let modified = facts.lastModified ?? ObjectFreshness.nowMilliseconds() / 1000

        // The body, into the file.
        let file = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard file >= 0 else { return .failed(.refused("cannot create the cache file: \(String(cString: strerror(errno)))")) }
        var framing = ResponseFraming(head: head, requestMethod: .get)
        var streaming = false
        if let fill, case .length(let length) = framing.kind {
            streaming = fill.begin(length: length, modifiedSeconds: modified)
        }
        var writeFailed = false
        var bodyBytes: Int64 = 0
        func keep(_ data: UnsafeRawBufferPointer) {
            var written = 0
            while written < data.count && !writeFailed {
                let n = write(file, data.baseAddress! + written, data.count - written)
                if n > 0 { written += n } else if n < 0 && errno == EINTR { continue } else { writeFailed = true }
            }
            bodyBytes += Int64(written)
        }
        func discard(_ failure: Result) -> Result {
            close(file)
            unlink(path)
            return failure
        }
        var pending = UnsafeRawBufferPointer(rebasing: buffer[head.headLength..<received])
        var reusable = !head.closes
        if framing.isCompleteWithoutBody {
            reusable = reusable && pending.isEmpty
        } else {
            while true {
                let verdict = framing.consume(pending, onData: keep)
                if writeFailed { return discard(.failed(.refused("cannot write the cache file: \(String(cString: strerror(errno)))"))) }
                if streaming { fill?.advance(to: bodyBytes) }
                if case .complete(let consumed) = verdict {
                    reusable = reusable && consumed == pending.count
                    break
                }
                if case .failed = verdict { return discard(.failed(.unavailable("sent a malformed chunked body"))) }
                if case .length(let total) = framing.kind, bodyBytes < total {
                    // The rest of a body of known length: socket → pipe → file, never through
                    // this process's memory (one copy, into the page cache, instead of two).
                    let outcome = spliceBody(total - bodyBytes, into: file) { moved in
                        bodyBytes += moved
                        if streaming { fill?.advance(to: bodyBytes) }
                    }
                    switch outcome {
                    case .done: break
                    case .writeFailed: return discard(.failed(.refused("cannot write the cache file: \(String(cString: strerror(errno)))")))
                    case .closed: return discard(.failed(.unavailable("closed the connection before the whole body")))
                    case .timedOut: return discard(.failed(.timedOut))
                    case .unavailable: break  // no pipe: the copying path below takes the body
                    }
                    if bodyBytes == total { break }
                }
                switch receive(into: buffer) {
                case .bytes(let n):
                    pending = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                case .closed where framing.closeCompletes:
                    reusable = false
                    pending = UnsafeRawBufferPointer(start: nil, count: 0)
                case .closed, .error:
                    return discard(.failed(.unavailable("closed the connection before the whole body")))
                case .timedOut:
                    return discard(.failed(.timedOut))
                }
                if pending.isEmpty { break }
            }
        }
        // The access time is left alone (UTIME_OMIT, (1 << 30) - 2, which Glibc does not import).
        var times = [timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2), timespec(tv_sec: Int(modified), tv_nsec: 0)]
        futimens(file, &times)
        close(file)
        return .complete(.stored(facts), reusable: reusable && !framing.closeCompletes)
    }

    // MARK: - Socket steps

    enum SpliceOutcome { case done, writeFailed, closed, timedOut, unavailable }

    /// Moves `remaining` bytes from the socket to `file` through a pipe, reporting each move.
    private func spliceBody(_ remaining: Int64, into file: Int32, progress: (Int64) -> Void) -> SpliceOutcome {
        var ends: [Int32] = [-1, -1]
        guard mq_pipe(&ends, Int32(O_CLOEXEC)) == 0 else { return .unavailable }
        defer {
            close(ends[0])
            close(ends[1])
        }
        _ = mq_set_pipe_size(ends[1], Int32(Self.pipeBytes))
        var left = remaining
        while left > 0 {
            let taken = mq_splice(fd, ends[1], UInt(min(left, Int64(Self.pipeBytes))), MQ_SPLICE_F_MOVE | MQ_SPLICE_F_NONBLOCK)
            if taken > 0 {
                var inPipe = taken
                while inPipe > 0 {
                    let put = mq_splice(ends[0], file, UInt(inPipe), MQ_SPLICE_F_MOVE)
                    if put > 0 { inPipe -= put } else if put < 0 && errno == EINTR { continue } else { return .writeFailed }
                }
                left -= Int64(taken)
                progress(Int64(taken))
            } else if taken == 0 {
                return .closed
            } else if errno == EAGAIN {
                if HTTPUpstreamSource.wait(fd, for: Int16(POLLIN), until: deadline) == .timedOut { return .timedOut }
            } else if errno != EINTR {
                return .closed
            }
        }
        return .done
    }

    static let pipeBytes = 1 << 20

    private func send(_ request: [UInt8]) -> Result? {
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                sent += n
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                if HTTPUpstreamSource.wait(fd, for: Int16(POLLOUT), until: deadline) == .timedOut { return .failed(.timedOut) }
            } else {
                // A pooled connection the upstream closed fails here (EPIPE, ECONNRESET).
                return sent == 0 ? .closedBeforeAnswer : .failed(.unavailable("the connection broke while sending the request"))
            }
        }
        return nil
    }

    enum Received { case bytes(Int), closed, error, timedOut }

    private func receive(into area: UnsafeMutableRawBufferPointer) -> Received {
        while true {
            let n = recv(fd, area.baseAddress!, area.count, 0)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .closed }
            guard errno == EAGAIN || errno == EINTR else { return .error }
            if HTTPUpstreamSource.wait(fd, for: Int16(POLLIN), until: deadline) == .timedOut { return .timedOut }
        }
    }
}
