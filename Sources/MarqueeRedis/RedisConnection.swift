import CHiredis
import Glibc

/// One blocking hiredis connection, owned by exactly one command or subscriber thread. Wraps the
/// `redisContext` so connect/AUTH/SELECT and error handling are written once for the rate limiter,
/// the revocation feed and the publisher.
///
/// Not Sendable: hiredis contexts are single-threaded; each thread creates its own.
public final class RedisConnection {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    private let context: UnsafeMutablePointer<redisContext>

    /// Connects, then sends AUTH and SELECT as the endpoint asks.
    /// - Parameters:
    ///   - connectTimeoutMicros: bound on TCP/Unix connect.
    ///   - ioTimeoutMicros: bound on each blocking read or write afterwards (SO_RCVTIMEO/SO_SNDTIMEO).
    /// - Throws: ``Failure`` with hiredis's or Redis's message.
    public init(endpoint: RedisEndpoint, connectTimeoutMicros: Int64, ioTimeoutMicros: Int64) throws {
        let connectTimeout = RedisConnection.timeval(micros: connectTimeoutMicros)
        let created: UnsafeMutablePointer<redisContext>?
        switch endpoint.address {
        case .tcp(let host, let port):
            created = redisConnectWithTimeout(host, Int32(port), connectTimeout)
        case .unix(let path):
            created = redisConnectUnixWithTimeout(path, connectTimeout)
        }
        guard let created else { throw Failure(description: "cannot allocate a Redis context") }
        if created.pointee.err != 0 {
            let message = RedisConnection.errorText(created)
            redisFree(created)
            throw Failure(description: "connect to \(endpoint): \(message)")
        }
        context = created
        if redisSetTimeout(context, RedisConnection.timeval(micros: ioTimeoutMicros)) != REDIS_OK {
            redisFree(context)
            throw Failure(description: "cannot set Redis I/O timeout")
        }
        if let password = endpoint.password {
            var args = ["AUTH"]
            if let user = endpoint.username { args.append(user) }
            args.append(password)
            if case .error(let e) = try command(args) { throw Failure(description: "AUTH refused: \(e)") }
        }
        if endpoint.database != 0, case .error(let e) = try command(["SELECT", String(endpoint.database)]) {
            throw Failure(description: "SELECT \(endpoint.database) refused: \(e)")
        }
    }

    deinit { redisFree(context) }

    /// The socket, for poll(2) by the subscriber.
    public var fileDescriptor: Int32 { context.pointee.fd }

    /// hiredis's description of the last connection error.
    public var errorDescription: String { RedisConnection.errorText(context) }

    /// Sends one command and waits for its reply. Allocates; command threads only.
    /// - Throws: ``Failure`` on I/O errors and timeouts (the connection is then unusable).
    public func command(_ args: [String]) throws -> RedisReply {
        try append(args)
        return try reply()
    }

    /// Queues one command in the output buffer (nothing is sent until a reply is read).
    public func append(_ args: [String]) throws {
        let status = args.withArgv { argc, argv, lengths in redisAppendCommandArgv(context, argc, argv, lengths) }
        if status != REDIS_OK { throw Failure(description: "append: \(errorDescription)") }
    }

    /// Queues one command given as raw argument pointers; used by the rate limiter's arena so the
    /// steady state builds commands without Swift strings.
    public func append(argc: Int32, argv: UnsafeMutablePointer<UnsafePointer<CChar>?>, lengths: UnsafePointer<Int>) throws {
        if redisAppendCommandArgv(context, argc, argv, lengths) != REDIS_OK {
            throw Failure(description: "append: \(errorDescription)")
        }
    }

    /// Flushes queued commands if needed and reads the next reply (blocking, bounded by the I/O timeout).
    public func reply() throws -> RedisReply {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
            throw Failure(description: "reply: \(errorDescription)")
        }
        let typed = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        return RedisReply(copying: typed)
    }

    /// Reads the next reply and lends the raw hiredis tree to `body` (no copying), then frees it.
    public func withReply<R>(_ body: (UnsafeMutablePointer<redisReply>) -> R) throws -> R {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
            throw Failure(description: "reply: \(errorDescription)")
        }
        defer { freeReplyObject(raw) }
        return body(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// A reply already parsed from the input buffer, without any I/O; nil when none is complete.
    public func bufferedReply() throws -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReplyFromReader(context, &raw) == REDIS_OK else {
            throw Failure(description: "protocol: \(errorDescription)")
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return RedisReply(copying: raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Writes everything queued, blocking up to the I/O timeout.
    public func flush() throws {
        var done: Int32 = 0
        while done == 0 {
            if redisBufferWrite(context, &done) != REDIS_OK { throw Failure(description: "write: \(errorDescription)") }
        }
    }

    /// Reads whatever the socket has into hiredis's buffer (blocking up to the I/O timeout, so call
    /// it after poll(2) said readable).
    public func readAvailable() throws {
        if redisBufferRead(context) != REDIS_OK { throw Failure(description: "read: \(errorDescription)") }
    }

    private static func errorText(_ c: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: c.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? "error \(c.pointee.err)" : String(decoding: bytes, as: UTF8.self)
        }
    }

    public static func timeval(micros: Int64) -> Glibc.timeval {
        Glibc.timeval(tv_sec: Int(micros / 1_000_000), tv_usec: Int(micros % 1_000_000))
    }
}

extension Array where Element == String {
    /// Calls `body` with C argv/argvlen arrays for these strings (binary-safe lengths), all
    /// pointing into one contiguous copy.
    fileprivate func withArgv<R>(_ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        var joined: [UInt8] = [0]  // never empty, so every argument has a valid pointer
        var offsets: [Int] = []
        for arg in self {
            offsets.append(joined.count)
            joined.append(contentsOf: arg.utf8)
        }
        let count = self.count
        let argv = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: Swift.max(1, count))
        let lengths = UnsafeMutablePointer<Int>.allocate(capacity: Swift.max(1, count))
        defer { argv.deallocate(); lengths.deallocate() }
        return joined.withUnsafeBytes { raw in
            let base = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            for i in 0..<count {
                argv[i] = UnsafePointer(base + offsets[i])
                lengths[i] = (i + 1 < count ? offsets[i + 1] : joined.count) - offsets[i]
            }
            return body(Int32(count), argv, lengths)
        }
    }
}
