/// Where the writer thread ships batches of delivery records: the local log, or a Redis stream
/// (spilling to the log). Called from the writer thread only, so an implementation needs no lock.
public protocol DeliveryRecordCarrier: AnyObject {
    /// Takes `records`: `n × DeliveryRecordLayout.size` bytes, oldest first. Throwing means none of
    /// them was taken for sure; the writer keeps them in their ring and offers them again (a
    /// carrier that took some before failing may see them twice: records are at-least-once).
    func ship(_ records: UnsafeRawBufferPointer) throws
    /// Makes what was shipped durable as far as the carrier can (fsync, a pipeline answered).
    func flush() throws
    /// Flushes and releases the carrier; the writer calls it once, on stop.
    func close() throws
    /// Counters of the carrier for `/metrics`, by name (e.g. `spilled`); empty when it has none.
    var counters: [(name: String, value: UInt64)] { get }
}

extension DeliveryRecordCarrier {
    public var counters: [(name: String, value: UInt64)] { [] }
}
