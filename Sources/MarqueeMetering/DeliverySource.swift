import Foundation
import MarqueeBus

/// Who produced a record and its number there: `(gateway, sequence)` is unique per record, so a
/// consumer that cannot rule out replays (a stream's spill replayed after Redis returns) drops
/// duplicates by it. The gateway's role and region travel with it.
public struct DeliveryOrigin: Sendable, Hashable {
    public var gateway: String
    public var role: String
    public var region: String
    public var sequence: UInt64

    public init(gateway: String, role: String, region: String, sequence: UInt64) {
        self.gateway = gateway
        self.role = role
        self.region = region
        self.sequence = sequence
    }
}

/// Records read from a position, and the position after them (past records that could not be
/// decoded too).
public struct DeliveryBatch: Sendable {
    public var records: [DeliveryRecord]
    /// Where each record came from, index for index (empty when the source cannot say).
    public var origins: [DeliveryOrigin]
    public var next: UInt64
    /// Records passed over (removed by retention, or not decodable).
    public var skipped: UInt64
    /// What the source acknowledges once the batch's effects committed (a stream's entry ids);
    /// empty for sources whose position the meter stores itself.
    public var acknowledgement: [String]

    public init(records: [DeliveryRecord], origins: [DeliveryOrigin] = [], next: UInt64, skipped: UInt64 = 0, acknowledgement: [String] = []) {
        self.records = records
        self.origins = origins
        self.next = next
        self.skipped = skipped
        self.acknowledgement = acknowledgement
    }
}

/// Where a consumer's delivery records come from (billing's meter, analytics). Two kinds:
/// - positional sources (the gateways' local log): a batch from a position and the position after
///   it, which the consumer stores in the same transaction as the batch's effects;
/// - acknowledging sources (a Redis stream read by a consumer group, `RedisDeliveryStream`): the
///   stream hands each consumer its own entries and forgets them once acknowledged, after the
///   commit; an entry never acknowledged is read again (by its consumer, or claimed by another).
/// Billing makes a replay harmless by its ids (coverage is a union, a charge names its minute);
/// analytics by dropping records whose origin it has counted.
public protocol DeliverySource: Sendable {
    /// A name the committed position is stored under.
    var name: String { get }
    /// Whether the consumer stores this source's position (false: the source acknowledges).
    var storesPosition: Bool { get }
    func read(from position: UInt64, limit: Int) async throws -> DeliveryBatch
    /// Called after a batch's effects committed.
    func acknowledge(_ batch: DeliveryBatch) async throws
}

extension DeliverySource {
    public var storesPosition: Bool { true }
    public func acknowledge(_ batch: DeliveryBatch) async throws {}
}

/// The gateways' local append-only log in a folder, read with one `DeliveryLogReader` (it keeps
/// the segment it tails open). After each commit the position is also noted beside the log
/// (`DeliveryLogConsumers`), so the writer's retention never removes what this consumer has not read.
public final class LocalDeliveryLog: DeliverySource, @unchecked Sendable {
    // @unchecked Sendable: the reader is only touched under `lock`.
    public let directory: String
    public let consumer: String
    private let lock = NSLock()
    private let reader: DeliveryLogReader

    public var name: String { "log:" + directory }

    public init(directory: String, consumer: String = "billing") {
        self.directory = directory
        self.consumer = consumer
        reader = DeliveryLogReader(directory: directory)
    }

    public func read(from position: UInt64, limit: Int) async throws -> DeliveryBatch {
        let batch = try lock.withLock { try reader.read(from: position, limit: limit) }
        let origins = batch.entries.map {
            DeliveryOrigin(gateway: $0.source.gatewayID, role: $0.source.role, region: $0.source.region, sequence: $0.sequence)
        }
        return DeliveryBatch(records: batch.entries.map(\.record), origins: origins, next: batch.next, skipped: batch.skipped)
    }

    public func acknowledge(_ batch: DeliveryBatch) async throws {
        try DeliveryLogConsumers.record(consumer, next: batch.next, in: directory)
    }
}

