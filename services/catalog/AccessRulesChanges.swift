import Synchronization

/// Wakes the access-rules long polls when titles change, so a waiting poll costs no database
/// query until something happens: every committed title write calls `notify()`, which wakes every
/// waiter at once. It also counts the polls waiting, so their number can be capped, and hands
/// out the periodic re-check (changes made by other catalog instances) to one waiter at a time.
final class AccessRulesChanges: Sendable {
    private struct State {
        /// Moves on every `notify()`.
        var generation: UInt64 = 0
        var nextWaiter = 0
        var waiters: [Int: Waiter] = [:]
        /// Polls admitted and not yet answered.
        var waiting = 0
        var lastRecheck = ContinuousClock.now
        /// After shutdown nothing waits any more.
        var closed = false

        /// Removes and returns the suspended waiters; pending ones see the new state when they register.
        mutating func takeSuspended() -> [CheckedContinuation<Void, Never>] {
            var woken: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in waiters {
                if case .suspended(let continuation) = waiter {
                    woken.append(continuation)
                    waiters[id] = nil
                }
            }
            return woken
        }
    }

    private enum Waiter {
        /// Registered, its continuation not yet stored.
        case pending
        case suspended(CheckedContinuation<Void, Never>)
        case cancelled
    }

    private let state = Mutex(State())

    /// Polls waiting now.
    var waiting: Int { state.withLock { $0.waiting } }

    /// The current generation; pass it to `wait(after:until:)` to wait for the next change.
    var generation: UInt64 { state.withLock { $0.generation } }

    /// Whether `close()` was called (the service is shutting down).
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Counts a poll about to wait, unless `limit` are waiting already (false: refuse it).
    func admit(limit: Int) -> Bool {
        state.withLock { state in
            guard state.waiting < limit else { return false }
            state.waiting += 1
            return true
        }
    }

    /// The admitted poll is answered.
    func leave() { state.withLock { $0.waiting -= 1 } }

    /// Titles changed: wakes every waiter.
    func notify() {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            return state.takeSuspended()
        }
        for continuation in woken { continuation.resume() }
    }

    /// The service is shutting down: wakes every waiter, and later waits return at once.
    func close() {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.closed = true
            return state.takeSuspended()
        }
        for continuation in woken { continuation.resume() }
    }

    /// True for exactly one caller per `interval`: the waiter that should ask the database whether
    /// another instance changed the rules.
    func claimRecheck(every interval: Duration) -> Bool {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard now - state.lastRecheck >= interval else { return false }
            state.lastRecheck = now
            return true
        }
    }

    /// Waits until the generation moves past `generation`, `deadline` passes, the task is
    /// cancelled or the service closes, whichever comes first.
    func wait(after generation: UInt64, until deadline: ContinuousClock.Instant) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.changed(after: generation) }
            group.addTask { try? await Task.sleep(until: deadline) }
            _ = await group.next()
            group.cancelAll()
        }
    }

    /// Returns once the generation has moved past `generation`, or on cancellation or close.
    private func changed(after generation: UInt64) async {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            state.waiters[state.nextWaiter] = .pending
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    guard case .pending = state.waiters[id], state.generation == generation, !state.closed else {
                        state.waiters[id] = nil
                        return true
                    }
                    state.waiters[id] = .suspended(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
                switch state.waiters[id] {
                case .suspended(let continuation):
                    state.waiters[id] = nil
                    return continuation
                case .pending:
                    state.waiters[id] = .cancelled
                    return nil
                case .cancelled, nil:
                    return nil
                }
            }
            continuation?.resume()
        }
    }
}
