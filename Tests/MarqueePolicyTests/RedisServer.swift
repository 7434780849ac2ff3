import Foundation
import Glibc
import MarqueeTestSupport
@testable import MarqueePolicy
import MarqueeRedis

extension RedisServer {
    var endpoint: RedisEndpoint { RedisEndpoint(address: .tcp(host: "127.0.0.1", port: Int(port))) }

    /// Runs one command on a fresh connection.
    func command(_ args: [String]) throws -> RedisReply {
        try RedisConnection(endpoint: endpoint, connectTimeoutMicros: 500_000, ioTimeoutMicros: 1_000_000).command(args)
    }
}

struct RedisTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Collects answers delivered on another thread.
final class AnswerCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [RedisRateAnswer] = []

    func append(_ answer: RedisRateAnswer) { lock.withLock { items.append(answer) } }
    var answers: [RedisRateAnswer] { lock.withLock { items } }
    var count: Int { lock.withLock { items.count } }
}
