/// Delivery records (`docs/delivery-records.md`): every response on a media path leaves one
/// record in its loop's ring; a writer thread ships them to the local log. Nil in
/// `ServerConfiguration.deliveryRecords` turns emission off (`bus.records: false`).
public struct DeliveryRecordSettings: Sendable {
    /// Longest a record waits in its ring before the writer ships it, in ms (`bus.batch_ms`). The
    /// writer also wakes when a ring is half full.
    public var batchMilliseconds = 20
    /// Records each loop's ring holds (a power of two, `bus.ring_records`); more are dropped and counted.
    public var ringRecords = 8192
    /// The local log's folder (`bus.log.dir`).
    public var logDirectory: String
    /// How often the log is fsynced, in ms (`bus.log.fsync_ms`): what a power cut may lose.
    public var logFsyncMilliseconds = 100
    /// Size at which a log segment is closed and the next started, in bytes (`bus.log.segment_bytes`).
    public var logSegmentBytes = 64 << 20
    /// The producing gateway (`gateway.id`, `gateway.region`) and its role.
    public var gatewayID: String
    public var region = "local"
    public var role = "origin"

    public init(logDirectory: String, gatewayID: String) {
        self.logDirectory = logDirectory
        self.gatewayID = gatewayID
    }
}
