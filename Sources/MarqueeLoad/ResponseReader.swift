import Glibc
import MarqueeHTTP

/// Reads one response to a GET from a receive area, without I/O: the head accumulates at the
/// area's start until it parses (1xx interim heads are skipped), then each receive's bytes are
/// framed (Content-Length, chunked, or until close) and dropped. A load client needs the end of
/// each response and its status, never its body. Tested alone with hostile input
/// (`ResponseReaderTests`).
public struct ResponseReader: Sendable {
    public enum Step: Equatable, Sendable {
        /// Receive more, into the area from `offset` (where the head bytes so far end; 0 in the body).
        case receive(offset: Int)
        /// The response is whole; `reusable`: the connection may carry the next request.
        case complete(status: Int, reusable: Bool)
        /// Not HTTP, or not framed as HTTP/1.1 says: the connection is dropped.
        case failed(Failure)
    }

    public enum Failure: String, Sendable {
        case malformedHead = "malformed response head"
        case headTooLarge = "response head too large"
        case malformedBody = "malformed chunked body"
        case closedEarly = "connection closed before the response ended"
        case unexpectedBytes = "bytes after the response"
    }

    public let maxHeadBytes: Int
    private var headBytes = 0
    private var framing: ResponseFraming?
    private var status = 0
    private var closes = false

    public init(maxHeadBytes: Int = 32 * 1024) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// Ready for the next response on the same connection.
    public mutating func reset() {
        headBytes = 0
        framing = nil
        status = 0
        closes = false
    }

    /// `count` bytes were received into `area` where the last `receive` step said. `body`, when
    /// given, is handed the body's bytes (de-chunked) as they are framed.
    public mutating func received(
        _ count: Int, in area: UnsafeMutableRawBufferPointer, body: ((UnsafeRawBufferPointer) -> Void)? = nil
    ) -> Step {
        guard framing != nil else { return readHead(received: headBytes + count, in: area, body: body) }
        return frame(UnsafeRawBufferPointer(start: area.baseAddress, count: count), body: body)
    }

    /// The status of the response being read, once its head is in (0 before).
    public var currentStatus: Int { status }

    /// The server closed the connection (or the receive failed).
    public mutating func ended() -> Step {
        if let framing, framing.closeCompletes { return .complete(status: status, reusable: false) }
        return .failed(.closedEarly)
    }

    private mutating func readHead(received start: Int, in area: UnsafeMutableRawBufferPointer, body: ((UnsafeRawBufferPointer) -> Void)?) -> Step {
        var received = start
        while true {
            let head: ResponseHead
            switch ResponseParser.parse(UnsafeRawBufferPointer(rebasing: area[0..<received]), maxHeadBytes: maxHeadBytes) {
            case .incomplete:
                guard received < min(area.count, maxHeadBytes) else { return .failed(.headTooLarge) }
                headBytes = received
                return .receive(offset: received)
            case .failed:
                let bytes = UnsafeRawBufferPointer(rebasing: area[0..<received])
                return .failed(received >= maxHeadBytes && ResponseParser.headEnd(bytes) == nil ? .headTooLarge : .malformedHead)
            case .complete(let parsed):
                head = parsed
            }
            let rest = received - head.headLength
            if head.isInterim {
                memmove(area.baseAddress!, area.baseAddress! + head.headLength, rest)
                received = rest
                if rest > 0 { continue }
                headBytes = 0
                return .receive(offset: 0)
            }
            guard head.status >= 200 && head.status <= 599 else { return .failed(.malformedHead) }
            status = head.status
            closes = head.closes
            let framing = ResponseFraming(head: head, requestMethod: .get)
            self.framing = framing
            if framing.isCompleteWithoutBody {
                return rest == 0 ? .complete(status: status, reusable: !closes) : .failed(.unexpectedBytes)
            }
            guard rest > 0 else { return .receive(offset: 0) }
            return frame(UnsafeRawBufferPointer(start: area.baseAddress! + head.headLength, count: rest), body: body)
        }
    }

    private mutating func frame(_ bytes: UnsafeRawBufferPointer, body: ((UnsafeRawBufferPointer) -> Void)?) -> Step {
        let verdict = body.map { framing!.consume(bytes, onData: $0) } ?? framing!.consume(bytes)
        switch verdict {
        case .more:
            return .receive(offset: 0)
        case .complete(let consumed):
            return consumed == bytes.count
                ? .complete(status: status, reusable: !closes && !framing!.closeCompletes) : .failed(.unexpectedBytes)
        case .failed:
            return .failed(.malformedBody)
        }
    }
}
