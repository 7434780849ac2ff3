/// The Lua script the shared limiter runs with EVALSHA: the same GCRA as ``GCRAParameters``, over
/// every key of a request at once (Redis runs a script atomically), on Redis's own clock so that
/// gateways on machines with different clocks agree.
///
/// KEYS[i] is a bucket; ARGV[3i-2], ARGV[3i-1] and ARGV[3i] are its T, τ and D in microseconds.
/// Replies `{0, position, retryAfterMicros}` when a key refuses (nothing written),
/// `{2, position, waitMicros}` when all pass but a key with a delay queues the request (the longest
/// wait), or `{1, position, remaining, resetMicros}` for the tightest key when all pass now.
/// Positions are 0-based. Each bucket is stored as its TAT in microseconds with an expiry 1 ms past
/// the TAT, after which the key is idle anyway and Redis can drop it.
enum RedisRateScript {
    static let source = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local n = #KEYS
        local newtat = {}
        local worst, worsti = -1, 0
        for i = 1, n do
          local interval = tonumber(ARGV[3 * i - 2])
          local tolerance = tonumber(ARGV[3 * i - 1])
          local delay = tonumber(ARGV[3 * i])
          local tat = tonumber(redis.call('GET', KEYS[i])) or now
          if tat < now then tat = now end
          local nt = tat + interval
          local over = nt - now - tolerance - delay
          if over > 0 and over > worst then
            worst = over
            worsti = i
          end
          newtat[i] = nt
        end
        if worst >= 0 then return {0, worsti - 1, worst} end
        local best, besti, bestreset = -1, 1, 0
        local wait, waiti = 0, 0
        for i = 1, n do
          local interval = tonumber(ARGV[3 * i - 2])
          local tolerance = tonumber(ARGV[3 * i - 1])
          local ahead = newtat[i] - now
          redis.call('SET', KEYS[i], string.format('%d', newtat[i]), 'PX', math.floor(ahead / 1000) + 1)
          if ahead - tolerance > wait then
            wait = ahead - tolerance
            waiti = i
          end
          local remaining = math.floor(math.max(0, tolerance - ahead) / interval)
          if best < 0 or remaining < best then
            best = remaining
            besti = i
            bestreset = ahead
          end
        end
        if wait > 0 then return {2, waiti - 1, wait} end
        return {1, besti - 1, best, bestreset}
        """

    /// `marquee:rl:<limit name>:` — the key prefix for one limit; the key hash follows as 16 hex digits.
    static func keyPrefix(_ limit: RateLimit) -> String { "marquee:rl:\(limit.name):" }

    /// The full key name for one bucket (tests and tools; the command thread writes the same bytes
    /// into its arena).
    static func keyName(_ limit: RateLimit, keyHash: UInt64) -> String {
        let hex = String(keyHash, radix: 16)
        return keyPrefix(limit) + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
