import Foundation
import Logging
import MarqueeBus
import MarqueeMetering
import MarqueeServiceKit
import Metrics
import ServiceLifecycle

/// Reads delivery records on analytics' own consumer (its position in a local log, or its
/// consumer group on the Redis stream) and rolls them up. One batch is one transaction: the
/// rollups, the sessions, the sequences counted and the log position commit together, and a
/// stream's entries are acknowledged only after the commit. A replayed record (same gateway and
/// sequence) is dropped, so every record counts once.
public struct AnalyticsIngestor: Sendable {
    let service: AnalyticsService
    let source: any DeliverySource
    let timelines: PackageTimelines
    let batchSize: Int
    /// Sessions as this ingestor committed them: a batch reads only their versions.
    let memory = CommittedMemory<ViewSession>()

    public init(service: AnalyticsService, source: any DeliverySource, timelines: PackageTimelines, batchSize: Int = 25_000) {
        self.service = service
        self.source = source
        self.timelines = timelines
        self.batchSize = batchSize
    }

    /// A batch read, with the timelines of its packages, ready for its transaction.
    struct Prepared: Sendable {
        let batch: DeliveryBatch
        /// Where it was read from (0 for acknowledging sources).
        let start: UInt64
        let timelines: [String: PackageTimeline]
    }

    /// Reads and applies one batch; returns how many records it read (0: nothing new).
    @discardableResult
    public func runOnce() async throws -> Int {
        guard let prepared = try await prepare(from: source.storesPosition ? try await position() : 0) else { return 0 }
        _ = try await commit(prepared)
        return max(1, prepared.batch.records.count)
    }

    /// Applies batches while there are records. From a local log each next batch is read and
    /// decoded while the one before it commits, on the other core. (Not from a stream: entries
    /// read ahead of a failed commit would wait for the claim timeout.) Returns how many records.
    @discardableResult
    public func runAvailable() async throws -> Int {
        guard source.storesPosition else { return try await runOnce() }
        guard var current = try await prepare(from: try await position()) else { return 0 }
        var total = 0
        while true {
            let end = current.batch.next
            async let following = prepare(from: end)
            let applied = try await commit(current)
            total += max(1, current.batch.records.count)
            // Another worker moved the position: start again from the stored one, later.
            guard applied, let next = try await following else { return total }
            current = next
        }
    }

    /// Reads a batch from `start` and loads its packages' timelines; nil when there is nothing new.
    func prepare(from start: UInt64) async throws -> Prepared? {
        let batch = try await source.read(from: start, limit: batchSize)
        guard source.storesPosition ? batch.next != start : !batch.acknowledgement.isEmpty else { return nil }
        var loaded: [String: PackageTimeline] = [:]
        var last = ""
        for record in batch.records {
            guard let title = record.titleID, let version = record.packageVersion, record.sessionID != nil else { continue }
            let name = title + "/" + version
            guard name != last else { continue }
            last = name
            if loaded[name] == nil, let timeline = try await timelines.timeline(title: title, version: version) { loaded[name] = timeline }
        }
        return Prepared(batch: batch, start: start, timelines: loaded)
    }

    /// Applies a prepared batch in one transaction, then acknowledges it. Returns false when the
    /// stored position was not where the batch starts (another worker applied it).
    func commit(_ prepared: Prepared) async throws -> Bool {
        let began = ContinuousClock.now
        let batch = prepared.batch
        let positional: (name: String, start: UInt64)? = source.storesPosition ? (source.name, prepared.start) : nil
        let timelines = prepared.timelines
        let memory = memory
        let outcome = try await service.database.transaction { tx in
            try await RollupBatch.apply(batch, timelines: timelines, positional: positional, memory: memory, tx)
        }
        guard outcome.applied else { return false }
        memory.remember(outcome.stored)
        if batch.skipped > 0 {
            service.logger.warning("analytics passed over delivery records it could not read", metadata: ["count": "\(batch.skipped)", "source": "\(source.name)"])
        }
        do {
            try await source.acknowledge(batch)
        } catch {
            service.logger.warning("cannot acknowledge analytics' batch to its source", metadata: ["error": "\(error)"])
        }
        PipelineMetrics.batch(records: batch.records.count, duplicates: outcome.duplicates, newest: outcome.newestRecord, took: ContinuousClock.now - began)
        return true
    }

    /// The committed position in a local log (0 before the first batch).
    func position() async throws -> UInt64 {
        let row = try await service.database.first("SELECT position FROM analytics_positions WHERE consumer = $1", source.name)
        return UInt64(max(0, row?.optionalInt("position") ?? 0))
    }

    public func runner(interval: Duration, logger: Logger) -> some Service {
        PeriodicWork("analytics ingestion", every: interval, logger: logger) {
            while try await runAvailable() > 0 {}
        }
    }
}

/// The pipeline's own metrics, on the service's `/metrics`.
enum PipelineMetrics {
    static let records = Counter(label: "marquee_analytics_records_total")
    static let duplicates = Counter(label: "marquee_analytics_duplicate_records_total")
    static let batches = Counter(label: "marquee_analytics_batches_total")
    static let lag = Gauge(label: "marquee_analytics_lag_seconds")
    static let rollupTime = Metrics.Timer(label: "marquee_analytics_batch_seconds")

    static func batch(records count: Int, duplicates duplicateCount: Int, newest: Int64?, took: Duration) {
        records.increment(by: count)
        duplicates.increment(by: duplicateCount)
        batches.increment()
        rollupTime.recordNanoseconds(took.components.seconds * 1_000_000_000 + took.components.attoseconds / 1_000_000_000)
        if let newest { lag.record(max(0, Double(unixMicroseconds() - newest) / 1_000_000)) }
    }
}

func unixMicroseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
}
