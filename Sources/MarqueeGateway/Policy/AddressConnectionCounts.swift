import CLinux
import MarqueeHTTP
import MarqueePolicy

/// Open connections per client address across every loop, to cap how many one address may hold.
/// A fixed table of (address hash, count) words updated with compare-and-swap: accepting and
/// closing never wait on a lock. When the table is full, a connection is admitted uncounted.
final class AddressConnectionCounts: @unchecked Sendable {
    let limit: UInt64
    private let keys: UnsafeMutablePointer<UInt64>
    private let counts: UnsafeMutablePointer<UInt64>
    private let mask: Int
    static let probes = 16

    init(limit: Int, slots: Int) {
        self.limit = UInt64(limit)
        var size = 1024
        while size < slots { size <<= 1 }
        keys = .allocate(capacity: size)
        keys.initialize(repeating: 0, count: size)
        counts = .allocate(capacity: size)
        counts.initialize(repeating: 0, count: size)
        mask = size - 1
    }

    /// Counts a new connection from `address`; false when the address is at its limit. The
    /// returned slot (-1 when uncounted) is given back to `release`.
    func acquire(_ address: IPAddress) -> (admitted: Bool, slot: Int32) {
        let key = StableHash.hash64(address)
        var i = Int(truncatingIfNeeded: key) & mask
        for _ in 0..<Self.probes {
            var current = mq_load_acquire(keys + i)
            if current == 0 {
                // Claim an empty slot; a slot whose count fell to zero keeps its key until reused.
                var expected: UInt64 = 0
                if mq_compare_exchange(keys + i, &expected, key) != 0 { current = key } else { current = expected }
            }
            if current == key {
                while true {
                    var count = mq_load_acquire(counts + i)
                    if count >= limit { return (false, -1) }
                    if mq_compare_exchange(counts + i, &count, count + 1) != 0 { return (true, Int32(i)) }
                }
            }
            // Reuse a slot another address left empty.
            if mq_load_acquire(counts + i) == 0 {
                var expected = current
                if mq_compare_exchange(keys + i, &expected, key) != 0 {
                    var count: UInt64 = 0
                    if mq_compare_exchange(counts + i, &count, 1) != 0 { return (true, Int32(i)) }
                }
            }
            i = (i + 1) & mask
        }
        return (true, -1)
    }

    func release(_ slot: Int32) {
        guard slot >= 0 else { return }
        _ = mq_fetch_sub(counts + Int(slot), 1)
    }
}
