import Benchmark
import MarqueeHTTP
import MarqueePolicy
import MarqueeTokens

// The access checks a gateway runs per request. Target (issue 3): token verification including
// parsing ≤ 500 ns. Each benchmark runs its operation 1,000 times per measured iteration
// (scalingFactor .kilo) and must not allocate.

nonisolated(unsafe) let keys = try! TokenKeyRing([
    ("2026-11", Array("kx7Qe1n5mZt0Yc2VwRb8LsPq4Hd6Jf9AaGu3Ek0Tz1o=".utf8)),
    ("2026-12", Array("9sPqLm2Vb7Xc4Nd8Rf1Gt6Hy3Ju0Ki5Ol9Zw2Ea7Qc=".utf8)),
])
/// A token as billing mints it at session start: scope, session, one-day expiry, no address.
let sessionToken: [UInt8] = Array(
    try! URLToken.mint(
        TokenClaims(keyID: "2026-12", expires: 1_893_456_000, scope: "/titles/tt0111161/3/", session: "ps_01JD8Q7X4K2M9VZ3R6T5W8Y1B0"),
        keys: keys
    ).utf8)
let boundToken: [UInt8] = Array(
    try! URLToken.mint(
        TokenClaims(
            keyID: "2026-11", expires: 1_893_456_000, notBefore: 1_700_000_000, scope: "/titles/tt0111161/3/",
            session: "ps_01JD8Q7X4K2M9VZ3R6T5W8Y1B0", client: CIDR("198.51.100.0/24")),
        keys: keys
    ).utf8)
let segmentPath: [UInt8] = Array("titles/tt0111161/3/v720/seg_00042.m4s".utf8)
let client = IPAddress("198.51.100.23")!
nonisolated(unsafe) let scratch = UnsafeMutableRawPointer.allocate(byteCount: TokenVerifier.maximumTokenBytes, alignment: 64)

/// A VOD media playlist of 60 segments (a 4-minute rendition at 4 s), about 2.6 KB.
let playlist: [UInt8] = {
    var text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n"
    for i in 0..<60 { text += "#EXTINF:4.000,\nseg_\(String(1000 + i).dropFirst()).m4s\n" }
    return Array((text + "#EXT-X-ENDLIST\n").utf8)
}()
nonisolated(unsafe) let rewriteOutput = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 64)
let host: [UInt8] = Array("edge.example.com".utf8)

nonisolated(unsafe) let limiter = LocalRateLimiter(
    limits: [RateLimit(name: "per_client", limit: 1_000_000, periodMilliseconds: 1000), RateLimit(name: "per_session", limit: 1_000_000, periodMilliseconds: 1000)])

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(2))

    Benchmark("Token verify: session token (parse + HMAC + scope)") { benchmark in
        sessionToken.withUnsafeBytes { token in
            segmentPath.withUnsafeBytes { path in
                for _ in benchmark.scaledIterations {
                    blackHole(TokenVerifier.verify(token, path: path, client: client, nowSeconds: 1_800_000_000, keys: keys, scratch: scratch))
                }
            }
        }
    }

    Benchmark("Token verify: all claims (not-before, session, CIDR)") { benchmark in
        boundToken.withUnsafeBytes { token in
            segmentPath.withUnsafeBytes { path in
                for _ in benchmark.scaledIterations {
                    blackHole(TokenVerifier.verify(token, path: path, client: client, nowSeconds: 1_800_000_000, keys: keys, scratch: scratch))
                }
            }
        }
    }

    Benchmark("Playlist rewrite, query placement (60 segments)") { benchmark in
        sessionToken.withUnsafeBytes { token in
            host.withUnsafeBytes { host in
                playlist.withUnsafeBytes { input in
                    let rewriter = ManifestRewriter(placement: .query, token: token, host: host)
                    for _ in benchmark.scaledIterations {
                        blackHole(rewriter.rewrite(input, kind: .hls, into: rewriteOutput))
                    }
                }
            }
        }
    }

    Benchmark("GCRA check, two keys (in-process limiter)") { benchmark in
        var now: UInt64 = 1_000_000
        for i in benchmark.scaledIterations {
            var keys = RateKeys()
            keys.append(RateKey(limitIndex: 0, keyHash: StableHash.mix(UInt64(i & 1023))))
            keys.append(RateKey(limitIndex: 1, keyHash: StableHash.mix(UInt64(i & 4095) | 1 << 40)))
            blackHole(limiter.check(keys, now: now))
            now &+= 3
        }
    }
}
