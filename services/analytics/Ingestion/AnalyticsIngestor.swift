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

    public init(service: AnalyticsService, source: any DeliverySource, timelines: PackageTimelines, batchSize: Int = 25_000) {
        self.service = service
        self.source = source
        self.timelines = timelines
        self.batchSize = batchSize
    }

    /// Reads and applies one batch; returns how many records it read (0: nothing new).
    @discardableResult
    public func runOnce() async throws -> Int {
        let start = source.storesPosition ? try await position() : 0
        let batch = try await source.read(from: start, limit: batchSize)
        guard source.storesPosition ? batch.next != start : !batch.acknowledgement.isEmpty else { return 0 }
        let began = ContinuousClock.now
        var loaded: [String: PackageTimeline] = [:]
        for record in batch.records {
            guard let title = record.titleID, let version = record.packageVersion, record.sessionID != nil else { continue }
            let name = "\(title)/\(version)"
            if loaded[name] == nil, let timeline = try await timelines.timeline(title: title, version: version) { loaded[name] = timeline }
        }
        let timelines = loaded
        let positional = source.storesPosition
        let name = source.name
        let outcome = try await service.database.transaction { tx in
            try await RollupBatch.apply(
                batch, timelines: timelines, positional: positional ? (name, start) : nil, tx)
        }
        guard outcome.applied else { return 0 }
        if batch.skipped > 0 {
            service.logger.warning("analytics passed over delivery records it could not read", metadata: ["count": "\(batch.skipped)", "source": "\(name)"])
        }
        do {
            try await source.acknowledge(batch)
        } catch {
            service.logger.warning("cannot acknowledge analytics' batch to its source", metadata: ["error": "\(error)"])
        }
        PipelineMetrics.batch(records: batch.records.count, duplicates: outcome.duplicates, newest: outcome.newestRecord, took: ContinuousClock.now - began)
        return max(1, batch.records.count)
    }

    /// The committed position in a local log (0 before the first batch).
    func position() async throws -> UInt64 {
        let row = try await service.database.first("SELECT position FROM analytics_positions WHERE consumer = $1", source.name)
        return UInt64(max(0, row?.optionalInt("position") ?? 0))
    }

    public func runner(interval: Duration, logger: Logger) -> some Service {
        PeriodicWork("analytics ingestion", every: interval, logger: logger) {
            while try await runOnce() > 0 {}
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
