import Synchronization

/// A bounded single-producer, single-consumer ring of fixed-size delivery-record slots: an event
/// loop appends, a writer thread takes batches. Preallocated once; appending neither allocates
/// nor locks, and a full ring refuses the record and counts it (`dropped`) rather than wait, so
/// the request path never blocks on the carrier.
public final class RecordRing: @unchecked Sendable {
    public let capacity: Int
    private let slots: UnsafeMutableRawPointer
    /// Records written (producer) and taken (consumer) since the start; slot = count % capacity.
    private let written = Atomic<Int>(0)
    private let taken = Atomic<Int>(0)
    private let droppedCount = Atomic<Int>(0)

    /// - Parameter capacity: slots; a power of two.
    public init(capacity: Int) {
        precondition(capacity > 0 && capacity.nonzeroBitCount == 1, "a record ring's capacity is a power of two")
        self.capacity = capacity
        slots = .allocate(byteCount: capacity * DeliveryRecordLayout.size, alignment: 64)
        slots.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * DeliveryRecordLayout.size)
    }

    deinit { slots.deallocate() }

    /// Records refused because the ring was full.
    public var dropped: Int { droppedCount.load(ordering: .relaxed) }

    /// Records waiting for the consumer.
    public var count: Int { written.load(ordering: .acquiring) - taken.load(ordering: .acquiring) }

    // MARK: - Producer (one thread)

    /// The next free slot to fill, or nil when the ring is full (counted as a drop). Fill it with
    /// `DeliveryRecordLayout.write`, then `commit()`. Cost: two atomic loads.
    @inline(__always) public func reserve() -> UnsafeMutableRawPointer? {
        let w = written.load(ordering: .relaxed)
        guard w - taken.load(ordering: .acquiring) < capacity else {
            droppedCount.add(1, ordering: .relaxed)
            return nil
        }
        return slots + (w & (capacity - 1)) * DeliveryRecordLayout.size
    }

    /// Publishes the slot `reserve()` returned.
    @inline(__always) public func commit() {
        written.add(1, ordering: .releasing)
    }

    // MARK: - Consumer (one thread)

    /// Hands at most `limit` waiting records to `body`, oldest first, as contiguous runs of
    /// `DeliveryRecordLayout.size`-byte records (a wrap gives two runs); frees them after `body`
    /// returns. Returns how many were taken.
    @discardableResult
    public func drain(limit: Int = .max, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Int {
        let t = taken.load(ordering: .relaxed)
        let available = min(written.load(ordering: .acquiring) - t, limit)
        guard available > 0 else { return 0 }
        let start = t & (capacity - 1)
        let first = min(available, capacity - start)
        try body(UnsafeRawBufferPointer(start: slots + start * DeliveryRecordLayout.size, count: first * DeliveryRecordLayout.size))
        if available > first {
            try body(UnsafeRawBufferPointer(start: slots, count: (available - first) * DeliveryRecordLayout.size))
        }
        taken.add(available, ordering: .releasing)
        return available
    }
}
