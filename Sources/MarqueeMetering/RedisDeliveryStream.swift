import Foundation
import MarqueeBus
import MarqueeRedis

/// The gateways' Redis stream of delivery records (`docs/delivery-records.md`), read by a
/// consumer group so that several billing workers share it, each entry going to one of them:
/// - a worker first reads the entries it was handed before a crash and never acknowledged
///   (`XREADGROUP ... 0`), then claims those another worker left idle past `claimIdle`
///   (`XAUTOCLAIM`), then reads new ones (`XREADGROUP ... >`, blocking up to `block`);
/// - entries are acknowledged (`XACK`) only after the meter committed what they caused.
/// A stream entry id (`ms-seq`) is the source's own position: the meter stores none.
public final class RedisDeliveryStream: DeliverySource, @unchecked Sendable {
    // @unchecked Sendable: `connection` and `readOwnPending` are touched only on `queue`.

    public struct Settings: Sendable {
        public var endpoint: RedisEndpoint
        /// `bus.stream`, the gateways' stream.
        public var stream = "marquee:deliveries"
        /// `billing.stream_group`: one group per kind of consumer (analytics has its own).
        public var group = "billing"
        /// `billing.stream_consumer`: this worker's name in the group, stable across restarts so
        /// a restarted worker finds its unacknowledged entries (default: host name).
        public var consumer: String
        /// `billing.stream_claim_idle_s`: entries another worker has held this long unacknowledged
        /// are taken over (it died or hangs).
        public var claimIdle: Duration = .seconds(30)
        /// How long one read waits for new entries.
        public var block: Duration = .seconds(1)

        public init(endpoint: RedisEndpoint, consumer: String) {
            self.endpoint = endpoint
            self.consumer = consumer
        }
    }

    public let settings: Settings
    private let queue = DispatchQueue(label: "marquee.billing.redis-stream")
    private var connection: RedisConnection?
    private var readOwnPending = true

    public var name: String { "redis:\(settings.stream)/\(settings.group)" }
    public var storesPosition: Bool { false }

    public init(settings: Settings) {
        self.settings = settings
    }

    public func read(from _: UInt64, limit: Int) async throws -> DeliveryBatch {
        try await onQueue { try self.readBatch(limit: limit) }
    }

    public func acknowledge(_ batch: DeliveryBatch) async throws {
        guard !batch.acknowledgement.isEmpty else { return }
        try await onQueue {
            let reply = try self.command(["XACK", self.settings.stream, self.settings.group] + batch.acknowledgement)
            if case .error(let message) = reply { throw RedisConnection.Failure(description: "XACK refused: \(message)") }
        }
    }

    // MARK: - On the queue

    private func readBatch(limit: Int) throws -> DeliveryBatch {
        let s = settings
        if readOwnPending {
            let mine = try entries(of: command(["XREADGROUP", "GROUP", s.group, s.consumer, "COUNT", String(limit), "STREAMS", s.stream, "0"]))
            if !mine.acknowledgement.isEmpty { return mine }
            readOwnPending = false
        }
        let idle = String(s.claimIdle.components.seconds * 1000)
        let claimed = try command(["XAUTOCLAIM", s.stream, s.group, s.consumer, idle, "0-0", "COUNT", String(limit)])
        if case .array(let parts) = claimed, parts.count >= 2 {
            let batch = try decode(parts[1])
            if !batch.acknowledgement.isEmpty { return batch }
        }
        let block = String(s.block.components.seconds * 1000 + s.block.components.attoseconds / 1_000_000_000_000_000)
        return try entries(of: command(["XREADGROUP", "GROUP", s.group, s.consumer, "COUNT", String(limit), "BLOCK", block, "STREAMS", s.stream, ">"]))
    }

    /// Runs a command, connecting (and creating the group) first when needed; a failed
    /// connection is dropped, so the next call reconnects and rereads this worker's pending entries.
    private func command(_ arguments: [String]) throws -> RedisReply {
        do {
            let c = try connected()
            let reply = try c.command(arguments)
            if case .error(let message) = reply, message.hasPrefix("NOGROUP") {
                connection = nil  // the stream was deleted: make the group again
                throw RedisConnection.Failure(description: message)
            }
            return reply
        } catch {
            connection = nil
            readOwnPending = true
            throw error
        }
    }

    private func connected() throws -> RedisConnection {
        if let connection { return connection }
        let timeout = (settings.block.components.seconds + 5) * 1_000_000
        let c = try RedisConnection(endpoint: settings.endpoint, connectTimeoutMicros: 2_000_000, ioTimeoutMicros: timeout)
        let created = try c.command(["XGROUP", "CREATE", settings.stream, settings.group, "0", "MKSTREAM"])
        if case .error(let message) = created, !message.hasPrefix("BUSYGROUP") {
            throw RedisConnection.Failure(description: "XGROUP CREATE \(settings.stream) \(settings.group): \(message)")
        }
        connection = c
        return c
    }

    /// `XREADGROUP`'s reply: `[[stream, [entry, ...]]]`, or null when nothing came.
    private func entries(of reply: RedisReply) throws -> DeliveryBatch {
        switch reply {
        case .null: return DeliveryBatch(records: [], next: 0)
        case .error(let message): throw RedisConnection.Failure(description: "XREADGROUP refused: \(message)")
        case .array(let streams):
            var batch = DeliveryBatch(records: [], next: 0)
            for stream in streams {
                guard case .array(let pair) = stream, pair.count == 2 else { continue }
                let part = try decode(pair[1])
                batch.records += part.records
                batch.origins += part.origins
                batch.skipped += part.skipped
                batch.acknowledgement += part.acknowledgement
            }
            return batch
        default: throw RedisConnection.Failure(description: "XREADGROUP answered something unexpected")
        }
    }

    /// Entries `[[id, [field, value, ...]], ...]`: each acknowledged whatever it holds; those
    /// without a valid record are counted as skipped.
    private func decode(_ list: RedisReply) throws -> DeliveryBatch {
        var batch = DeliveryBatch(records: [], next: 0)
        guard case .array(let items) = list else { return batch }
        for item in items {
            guard case .array(let entry) = item, entry.count == 2, let id = entry[0].text else { continue }
            batch.acknowledgement.append(id)
            var record: DeliveryRecord?
            var origin = DeliveryOrigin(gateway: "", role: "", region: "", sequence: 0)
            if case .array(let fields) = entry[1] {
                for i in stride(from: 0, to: fields.count - 1, by: 2) {
                    switch fields[i].text {
                    case "r":
                        if case .string(let bytes) = fields[i + 1] {
                            record = bytes.withUnsafeBytes { try? DeliveryRecordLayout.decode($0) }
                        }
                    case "gw": origin.gateway = fields[i + 1].text ?? ""
                    case "role": origin.role = fields[i + 1].text ?? ""
                    case "region": origin.region = fields[i + 1].text ?? ""
                    case "seq": origin.sequence = fields[i + 1].text.flatMap { UInt64($0) } ?? 0
                    default: break
                    }
                }
            }
            if let record {
                batch.records.append(record)
                batch.origins.append(origin)
            } else {
                batch.skipped += 1
            }
        }
        return batch
    }

    private func onQueue<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}
