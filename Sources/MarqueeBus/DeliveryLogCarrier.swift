import Glibc

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

    /// A random id per start (`boot`), so `(gateway, boot, sequence)` is unique across restarts.
    public static func randomBoot() -> UInt64 {
        var value: UInt64 = 0
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = read(fd, &value, 8)
            Glibc.close(fd)
        }
        if value == 0 {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            value = UInt64(ts.tv_sec) &* 1_000_000_007 ^ UInt64(ts.tv_nsec) ^ UInt64(getpid()) << 40
        }
        return value
    }
}
