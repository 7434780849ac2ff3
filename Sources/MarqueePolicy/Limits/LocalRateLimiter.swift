import CLinux

/// The process-wide GCRA table every event loop charges directly: one fixed array of
/// (key, TAT) word pairs updated with compare-and-swap, so no loop ever waits on another, nothing
/// is allocated after `init`, and no I/O happens.
///
/// Layout and rules:
/// - Slot `i` is words `2i` (the key: a nonzero mix of the key hash and the limit index; 0 means
///   never used) and `2i+1` (the TAT word: a 16-bit tag of the key in the top bits and the TAT in
///   microseconds modulo 2^48 below). A key lives in the first usable slot of an 8-slot linear probe
///   window starting at its hash. Slots never return to 0, so a lookup stops at the first empty one.
/// - The tag lets the TAT CAS fail when the slot changed owner between the read and the write; a
///   TAT word whose tag does not match its key word is a claim in progress and reads as idle.
/// - TATs are compared with `now` modulo 2^48 µs (8.9 years) so any clock works; a TAT more than
///   τ + D + 60 s ahead cannot be real (only clock wrap or a ancient slot can produce it) and reads as
///   idle. The 60 s absorbs loops whose `now` differs slightly.
/// - A slot whose TAT is in the past holds no information (an idle key and a missing key are the
///   same to GCRA), so a new key may take it over.
/// - When the window holds eight live keys the request is **allowed** without accounting and
///   counted in ``tableFullCount``: the table is sized for the working set, and failing open beats
///   refusing legitimate clients because attackers filled a probe window. Watch the counter.
/// - Multi-key: all keys are evaluated first; any refusal returns `.limited` having written
///   nothing. Otherwise each key is committed with CAS; a key whose CAS lost is re-read and
///   re-evaluated, and if it now refuses, the keys already committed are refunded (their TAT
///   moved back by T) before returning `.limited`.
public final class LocalRateLimiter: @unchecked Sendable {
    // @unchecked Sendable: `words` and `counters` are raw memory allocated in init, freed in deinit,
    // and after init only ever accessed through the C11 atomics in CLinux; `parameters` is
    // immutable after init.

    /// The limits, indexed by `RateKey.limitIndex`.
    public let limits: [RateLimit]
    /// Slots in the table (a power of two).
    public let capacity: Int
    /// Slots examined per key.
    public static let probeLength = 8

    private let words: UnsafeMutablePointer<UInt64>
    private let counters: UnsafeMutablePointer<UInt64>
    private let parameters: UnsafeMutableBufferPointer<GCRAParameters>
    private let mask: Int
    /// How far ahead of now a TAT may legitimately be, for any limit, plus skew slack.
    private let staleHorizon: UInt64

    static let tatMask: UInt64 = (1 << 48) - 1
    static let skewSlack: UInt64 = 60_000_000

    /// - Parameters:
    ///   - limits: the configured limits; `RateKey.limitIndex` indexes this array (at most 256).
    ///   - capacity: slots, rounded up to a power of two (at least 16). Each slot is 16 bytes; the
    ///     default 65,536 is 1 MiB and fits a working set of about 40,000 active keys.
    public init(limits: [RateLimit], capacity: Int = 65_536) {
        precondition(!limits.isEmpty && limits.count <= 256, "between 1 and 256 limits")
        var size = 16
        while size < capacity { size <<= 1 }
        self.limits = limits
        self.capacity = size
        mask = size - 1
        words = .allocate(capacity: size * 2)
        words.initialize(repeating: 0, count: size * 2)
        counters = .allocate(capacity: 8)
        counters.initialize(repeating: 0, count: 8)
        parameters = .allocate(capacity: limits.count)
        _ = parameters.initialize(from: limits.map(\.parameters))
        staleHorizon = (limits.map { $0.toleranceMicros &+ $0.delayMicros }.max() ?? 0) &+ LocalRateLimiter.skewSlack
    }

    deinit {
        words.deallocate()
        counters.deallocate()
        parameters.deallocate()
    }

    /// Requests allowed without accounting because a key's probe window was full.
    public var tableFullCount: UInt64 { mq_load_relaxed(counters) }

    /// Charges one request against every key in `keys`, all or nothing.
    /// - Parameters:
    ///   - keys: up to four keys; an empty set is allowed with `remaining: Int.max`.
    ///   - now: the current time in microseconds on any steady clock shared by the callers.
    /// - Returns: `.allowed` with the tightest key, or `.limited` with the key that frees up last.
    /// Cost: a few atomic loads and one CAS per key; thread-safe, lock-free, allocation-free.
    public func check(_ keys: RateKeys, now: UInt64) -> RateVerdict {
        if keys.isEmpty { return .allowed(limitIndex: 0, remaining: Int.max, resetMicros: 0) }
        return withUnsafeTemporaryAllocation(of: Plan.self, capacity: RateKeys.capacity) { plans in
            // Phase 1: evaluate every key without writing.
            var worstRetry: UInt64 = 0
            var worstIndex: UInt8 = 0
            var refused = false
            for i in 0..<keys.count {
                let key = keys[i]
                precondition(Int(key.limitIndex) < parameters.count, "limitIndex out of range")
                let combined = StableHash.mix(key.keyHash, seed: UInt64(key.limitIndex) &+ 1)
                var plan = Plan(limitIndex: key.limitIndex, combined: combined)
                plan.locate(self, now: now)
                (plans.baseAddress! + i).initialize(to: plan)
                if case .refuse(let retry) = plan.outcome {
                    if !refused || retry > worstRetry { worstRetry = retry; worstIndex = key.limitIndex }
                    refused = true
                }
            }
            if refused { return .limited(limitIndex: worstIndex, retryAfterMicros: worstRetry) }

            // Phase 2: commit each key, re-evaluating any whose CAS lost.
            for i in 0..<keys.count {
                if !commit(&plans[i], now: now) {
                    for j in 0..<i { refund(plans[j]) }
                    guard case .refuse(let retry) = plans[i].outcome else { preconditionFailure() }
                    return .limited(limitIndex: plans[i].limitIndex, retryAfterMicros: retry)
                }
            }

            var tightest = 0
            var best = Int.max
            var longestWait: UInt64 = 0
            var waitIndex: UInt8 = 0
            for i in 0..<keys.count {
                guard case .allow(_, let remaining, _, let wait) = plans[i].outcome else { continue }
                if remaining < best {
                    best = remaining
                    tightest = i
                }
                if wait > longestWait {
                    longestWait = wait
                    waitIndex = plans[i].limitIndex
                }
            }
            if longestWait > 0 { return .delayed(limitIndex: waitIndex, waitMicros: longestWait) }
            guard case .allow(_, let remaining, let reset, _) = plans[tightest].outcome else { preconditionFailure() }
            return .allowed(limitIndex: plans[tightest].limitIndex, remaining: remaining, resetMicros: reset)
        }
    }

    // MARK: - Table mechanics

    /// Where one key stands: its slot (or the slot it would claim) and what was observed there.
    struct Plan {
        enum Place { case found, vacant, full }
        let limitIndex: UInt8
        let combined: UInt64
        var place: Place = .full
        var slot = 0
        var observedKey: UInt64 = 0
        var observedTAT: UInt64 = 0
        var outcome: GCRAParameters.Outcome = .refuse(retryAfterMicros: 0)
        var committed = false

        init(limitIndex: UInt8, combined: UInt64) {
            self.limitIndex = limitIndex
            self.combined = combined
        }

        var tag: UInt64 { LocalRateLimiter.tag(combined) }

        mutating func locate(_ table: LocalRateLimiter, now: UInt64) {
            let p = table.parameters[Int(limitIndex)]
            let now48 = now & LocalRateLimiter.tatMask
            let start = Int(truncatingIfNeeded: combined) & table.mask
            var vacant = -1
            var vacantKey: UInt64 = 0
            var vacantTAT: UInt64 = 0
            place = .full
            for probe in 0..<LocalRateLimiter.probeLength {
                let s = (start + probe) & table.mask
                let k = mq_load_acquire(table.words + 2 * s)
                if k == combined {
                    place = .found
                    slot = s
                    observedKey = k
                    observedTAT = mq_load_acquire(table.words + 2 * s + 1)
                    let ahead = table.ahead(observedTAT, tag: tag, now48: now48, horizon: p.tolerance &+ p.delay &+ LocalRateLimiter.skewSlack)
                    outcome = p.evaluate(tat: now &+ ahead, now: now)
                    return
                }
                if k == 0 {
                    if vacant < 0 {
                        vacant = s
                        vacantKey = 0
                        vacantTAT = mq_load_acquire(table.words + 2 * s + 1)
                    }
                    break
                }
                if vacant < 0 {
                    let w = mq_load_acquire(table.words + 2 * s + 1)
                    if table.ahead(w, tag: nil, now48: now48, horizon: table.staleHorizon) == 0 {
                        vacant = s
                        vacantKey = k
                        vacantTAT = w
                    }
                }
            }
            if vacant >= 0 {
                place = .vacant
                slot = vacant
                observedKey = vacantKey
                observedTAT = vacantTAT
            }
            // A new key and a key the full table cannot hold both start idle.
            outcome = p.evaluate(tat: now, now: now)
        }
    }

    @inline(__always)
    static func tag(_ combined: UInt64) -> UInt64 { ((combined >> 48) | 1) & 0xFFFF }

    /// Microseconds the TAT in `word` runs ahead of now, 0 when idle, stale, or (with a `tag`)
    /// written for another key.
    @inline(__always)
    func ahead(_ word: UInt64, tag: UInt64?, now48: UInt64, horizon: UInt64) -> UInt64 {
        if let tag, word >> 48 != tag { return 0 }
        let stored = word & LocalRateLimiter.tatMask
        let delta = Int64(bitPattern: ((stored &- now48) & LocalRateLimiter.tatMask) << 16) >> 16
        if delta <= 0 || UInt64(delta) > horizon { return 0 }
        return UInt64(delta)
    }

    @inline(__always)
    func encode(tag: UInt64, tat: UInt64) -> UInt64 { tag << 48 | (tat & LocalRateLimiter.tatMask) }

    /// Writes one planned key. - Returns: false when, after losing a race, the key now refuses
    /// (its plan then holds the refusal).
    private func commit(_ plan: inout Plan, now: UInt64) -> Bool {
        for _ in 0..<64 {
            guard case .allow(let newTAT, _, _, _) = plan.outcome else { return false }
            let word = encode(tag: plan.tag, tat: newTAT)
            switch plan.place {
            case .full:
                mq_fetch_add(counters, 1)
                return true
            case .found:
                var expected = plan.observedTAT
                if mq_compare_exchange(words + 2 * plan.slot + 1, &expected, word) == 1 {
                    plan.committed = true
                    return true
                }
            case .vacant:
                var expectedKey = plan.observedKey
                if mq_compare_exchange(words + 2 * plan.slot, &expectedKey, plan.combined) == 1 {
                    var expected = plan.observedTAT
                    if mq_compare_exchange(words + 2 * plan.slot + 1, &expected, word) == 1 {
                        plan.committed = true
                        return true
                    }
                }
            }
            plan.locate(self, now: now)
        }
        // Persistent contention on one slot: fail open like a full table rather than spin on.
        mq_fetch_add(counters, 1)
        return true
    }

    /// Gives back one committed request: moves the key's TAT back by T if the slot is still its.
    private func refund(_ plan: Plan) {
        guard plan.committed else { return }
        let interval = parameters[Int(plan.limitIndex)].interval
        let tatWord = words + 2 * plan.slot + 1
        for _ in 0..<64 {
            guard mq_load_acquire(words + 2 * plan.slot) == plan.combined else { return }
            var expected = mq_load_acquire(tatWord)
            guard expected >> 48 == plan.tag else { return }
            let stored = expected & LocalRateLimiter.tatMask
            let word = encode(tag: plan.tag, tat: stored &- interval)
            if mq_compare_exchange(tatWord, &expected, word) == 1 { return }
        }
    }
}
