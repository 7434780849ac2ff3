/// One rate limit: `limit` requests per `periodMilliseconds`, of which `burst` may arrive at once.
///
/// Enforced with GCRA (the generic cell rate algorithm): each key keeps one number, its theoretical
/// arrival time (TAT). The emission interval is T = period / limit and the tolerance τ = T × burst,
/// both in microseconds. A request at `now` moves the TAT to `max(TAT, now) + T` and passes when the
/// new TAT is at most `now + τ`. One word per key, no timers, and the same arithmetic runs in the
/// local table and in the Redis script, so local and shared limits agree.
///
/// With a `delay`, a request past the burst is not refused while its turn comes within the delay:
/// it is charged at once and served when its turn comes (nginx's `limit_req` burst queue). This
/// paces a client instead of refusing it, for clients such as players that do not retry a 429.
public struct RateLimit: Sendable, Hashable {
    /// Names the policy in the `RateLimit-Policy`/`RateLimit` headers and in Redis key names.
    public let name: String
    /// Requests per period in steady state.
    public let limit: Int
    /// The period over which `limit` requests are allowed, in milliseconds.
    public let periodMilliseconds: Int64
    /// How many requests may arrive at once from an idle key.
    public let burst: Int
    /// How long a request past the burst may wait for its turn, in milliseconds (0: refused at once).
    public let delayMilliseconds: Int64

    /// - Parameters:
    ///   - name: the policy name; characters other than printable ASCII, `"` and `\` are dropped
    ///     from headers and Redis keys.
    ///   - limit: requests per period, at least 1 (smaller values are raised to 1).
    ///   - periodMilliseconds: the period, at least 1 ms.
    ///   - burst: how many may arrive at once; defaults to `limit`; at least 1.
    ///   - delayMilliseconds: how long a request past the burst may wait for its turn; 0 refuses it.
    public init(name: String, limit: Int, periodMilliseconds: Int64, burst: Int? = nil, delayMilliseconds: Int64 = 0) {
        self.name = RateLimit.sanitised(name)
        self.limit = max(1, limit)
        self.periodMilliseconds = max(1, periodMilliseconds)
        self.burst = max(1, burst ?? limit)
        self.delayMilliseconds = max(0, delayMilliseconds)
    }

    /// T: microseconds between requests in steady state (at least 1).
    public var emissionIntervalMicros: UInt64 {
        max(1, UInt64(periodMilliseconds) &* 1000 / UInt64(limit))
    }

    /// τ = T × burst, in microseconds: how far ahead of now a key's TAT may run.
    public var toleranceMicros: UInt64 { emissionIntervalMicros &* UInt64(burst) }

    /// D, the longest wait, in microseconds.
    public var delayMicros: UInt64 { UInt64(delayMilliseconds) &* 1000 }

    /// The window advertised in headers, in whole seconds (rounded up, at least 1).
    public var windowSeconds: Int64 { max(1, (periodMilliseconds + 999) / 1000) }

    /// The `RateLimit-Policy` field member for this limit, structured-field form
    /// (draft-ietf-httpapi-ratelimit-headers-10/11): `"<name>";q=<limit>;w=<window seconds>`.
    /// Join several with `, `. Computed once at configuration time, not per request.
    public var policyHeaderValue: String {
        "\"\(name)\";q=\(limit);w=\(windowSeconds)"
    }

    /// The `RateLimit` field member: `"<name>";r=<remaining>;t=<seconds until reset>`, with the
    /// reset rounded up to whole seconds. Allocates a String; the request path should use
    /// ``writeHeaderValue(remaining:resetMicros:into:)``.
    public func headerValue(remaining: Int, resetMicros: UInt64) -> String {
        "\"\(name)\";r=\(max(0, remaining));t=\(RateLimit.seconds(roundingUp: resetMicros))"
    }

    /// Writes the `RateLimit` field member into `buffer` without allocating.
    /// - Returns: the number of bytes written, or 0 if `buffer` is too small (nothing useful written).
    public func writeHeaderValue(remaining: Int, resetMicros: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var writer = ASCIIWriter(buffer)
        writer.byte(UInt8(ascii: "\""))
        for b in name.utf8 { writer.byte(b) }
        writer.byte(UInt8(ascii: "\""))
        writer.bytes(";r=")
        writer.decimal(UInt64(max(0, remaining)))
        writer.bytes(";t=")
        writer.decimal(RateLimit.seconds(roundingUp: resetMicros))
        return writer.overflowed ? 0 : writer.count
    }

    /// Whole seconds, rounded up, for `t=` and `Retry-After`.
    public static func seconds(roundingUp micros: UInt64) -> UInt64 {
        micros / 1_000_000 + (micros % 1_000_000 == 0 ? 0 : 1)
    }

    /// sf-string allows printable ASCII with `"` and `\` escaped; dropping them keeps the header
    /// and the Redis key name trivially safe and avoids escaping on the request path.
    static func sanitised(_ name: String) -> String {
        let kept = name.utf8.filter { $0 >= 0x21 && $0 <= 0x7E && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
        return kept.isEmpty ? "default" : String(decoding: kept, as: UTF8.self)
    }

    /// The GCRA constants the limiter tables use.
    var parameters: GCRAParameters {
        GCRAParameters(interval: emissionIntervalMicros, tolerance: toleranceMicros, burst: burst, delay: delayMicros)
    }
}

/// Bounded ASCII output into caller memory; records overflow instead of trapping.
struct ASCIIWriter {
    let buffer: UnsafeMutableRawBufferPointer
    var count = 0
    var overflowed = false

    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    mutating func byte(_ b: UInt8) {
        guard count < buffer.count else { overflowed = true; return }
        buffer[count] = b
        count += 1
    }

    mutating func bytes(_ s: StaticString) {
        s.withUTF8Buffer { for b in $0 { byte(b) } }
    }

    mutating func decimal(_ value: UInt64) {
        var digits: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                     UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { raw in
            let d = raw.bindMemory(to: UInt64.self)
            repeat {
                d[n] = v % 10
                v /= 10
                n += 1
            } while v > 0
            while n > 0 {
                n -= 1
                byte(UInt8(ascii: "0") + UInt8(d[n]))
            }
        }
    }
}
