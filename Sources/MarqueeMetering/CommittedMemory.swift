import NIOConcurrencyHelpers

/// Rows a consumer of delivery records committed, remembered as it committed them, with the
/// version each was stored at. A batch reads only its rows' versions and loads whole rows only
/// for those not remembered at that version: written elsewhere since (another writer bumped the
/// version), or never seen. The contract on the table: every statement that writes a row bumps its
/// version. A rolled-back batch changes nothing here (values are remembered after the commit), so
/// what is remembered is always what was stored at its version.
public final class CommittedMemory<Value: Sendable>: Sendable {
    struct Entry: Sendable {
        var value: Value
        var version: Int64
        /// The batch that last used or wrote the entry, for eviction.
        var lastBatch: UInt64
    }

    /// Rows remembered at most; past it, those not used by the latest batch are forgotten.
    public let capacity: Int
    private let state = NIOLockedValueBox<(entries: [String: Entry], batch: UInt64)>(([:], 0))

    public init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    /// The remembered values among `versions` (id → version in the database) whose version
    /// matches; the rest must be read. Starts a new batch for eviction.
    public func values(matching versions: [String: Int64]) -> [String: Value] {
        state.withLockedValue { state in
            state.batch += 1
            var found: [String: Value] = [:]
            found.reserveCapacity(versions.count)
            for (id, version) in versions {
                guard var entry = state.entries[id], entry.version == version else { continue }
                entry.lastBatch = state.batch
                state.entries[id] = entry
                found[id] = entry.value
            }
            return found
        }
    }

    /// After a commit: rows as now stored, at their versions.
    public func remember(_ rows: some Sequence<(id: String, version: Int64, value: Value)>) {
        state.withLockedValue { state in
            for row in rows {
                state.entries[row.id] = Entry(value: row.value, version: row.version, lastBatch: state.batch)
            }
            if state.entries.count > capacity {
                let batch = state.batch
                state.entries = state.entries.filter { $0.value.lastBatch == batch }
            }
        }
    }

    /// Forgets rows whose stored form is not known here.
    public func forget(_ ids: some Sequence<String>) {
        state.withLockedValue { state in
            for id in ids { state.entries[id] = nil }
        }
    }

    public var count: Int { state.withLockedValue { $0.entries.count } }
}
