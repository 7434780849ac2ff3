/// The local append-only log as a carrier (`docs/delivery-records.md`): each batch is appended
/// to the current segment; the log fsyncs on its own interval, and on `flush`.
public final class DeliveryLogCarrier: DeliveryRecordCarrier {
    let log: DeliveryLogWriter

    /// Opens (or continues) the log in `directory` for the gateway `gatewayID` of `role` in
    /// `region`; `boot` tells this start from the earlier ones.
    public init(
        directory: String, gatewayID: String, role: String, region: String, boot: UInt64, segmentBytes: Int = 64 << 20,
        fsyncInterval: Duration = .milliseconds(100)
    ) throws {
        log = try DeliveryLogWriter(
            directory: directory, identity: DeliveryLogIdentity(gatewayID: gatewayID, role: role, region: region, boot: boot),
            segmentBytes: segmentBytes, fsyncInterval: fsyncInterval)
    }

    public func ship(_ records: UnsafeRawBufferPointer) throws {
        try log.append(records)
    }

    public func flush() throws { try log.sync() }

    public func close() throws { try log.close() }

    /// The sequence the next record will get.
    public var nextSequence: UInt64 { log.nextSequence }
}
