import Foundation
import Glibc

/// A plain-socket HTTP upstream whose answers a test scripts: each request head it reads is
/// recorded and answered with what `respond` returns (bytes to send, then whether to close).
public final class ScriptedUpstream: @unchecked Sendable {
    public struct Answer: Sendable {
        public var bytes: [UInt8]
        public var close = false
        /// Hold the connection open without answering (a stalled upstream).
        public var stall = false
        /// Sent after `bytes` once `gate` opens (an upstream in the middle of its body), then the
        /// connection closes if `close`.
        public var rest: [UInt8] = []
        public var gate: Gate?

        public init(bytes: [UInt8], close: Bool = false, stall: Bool = false, rest: [UInt8] = [], gate: Gate? = nil) {
            self.bytes = bytes
            self.close = close
            self.stall = stall
            self.rest = rest
            self.gate = gate
        }
    }

    /// Holds answers part-way until the test opens it.
    public final class Gate: @unchecked Sendable {
        private let condition = NSCondition()
        private var isOpen = false
        public init() {}
        public func open() {
            condition.lock()
            isOpen = true
            condition.broadcast()
            condition.unlock()
        }
        /// Waits until open, for at most `seconds`.
        func wait(seconds: Double) {
            condition.lock()
            let deadline = Date().addingTimeInterval(seconds)
            while !isOpen && condition.wait(until: deadline) {}
            condition.unlock()
        }
    }

    public let port: UInt16
    private let fd: Int32
    private let lock = NSLock()
    private var heads: [String] = []
    private var accepted = 0
    private let respond: @Sendable (String) -> Answer

    public init(respond: @escaping @Sendable (String) -> Answer) throws {
        self.respond = respond
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.fd = fd
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            port = 0
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.port = UInt16(bigEndian: address.sin_port)
        Thread { [self] in acceptLoop() }.start()
    }

    deinit { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

    public var url: String { "http://127.0.0.1:\(port)" }
    public var requests: [String] { lock.withLock { heads } }
    public var connections: Int { lock.withLock { accepted } }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 { return }
            lock.withLock { accepted += 1 }
            Thread { [self] in serve(client) }.start()
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            while let end = Self.headEnd(pending) {
                let head = String(decoding: pending[0..<end], as: UTF8.self)
                pending.removeFirst(end)
                lock.withLock { heads.append(head) }
                let answer = respond(head)
                if answer.stall {
                    Thread.sleep(forTimeInterval: 5)
                    return
                }
                guard Self.sendAll(answer.bytes, to: client) else { return }
                if let gate = answer.gate {
                    gate.wait(seconds: 60)
                    guard Self.sendAll(answer.rest, to: client) else { return }
                }
                if answer.close { return }
            }
            let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { return }
            pending += chunk[0..<n]
        }
    }

    private static func sendAll(_ bytes: [UInt8], to client: Int32) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(client, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 3..<bytes.count where bytes[i] == 10 && bytes[i - 1] == 13 && bytes[i - 2] == 10 && bytes[i - 3] == 13 { return i + 1 }
        return nil
    }

    /// `HTTP/1.1 <status>` with the body and its Content-Length, and `extra` header lines.
    public static func response(_ status: Int, _ body: [UInt8], extra: [String] = []) -> [UInt8] {
        var head = "HTTP/1.1 \(status) X\r\nContent-Length: \(body.count)\r\n"
        for line in extra { head += line + "\r\n" }
        return Array((head + "\r\n").utf8) + body
    }
}
