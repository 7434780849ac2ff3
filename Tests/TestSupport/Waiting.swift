import Foundation

extension Duration {
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Checks `condition` every `interval` until it holds or `timeout` has passed; returns whether it held.
/// This is how the tests wait for something to happen: on a condition, with a deadline.
@discardableResult
public func waitUntil(
    timeout: Duration, interval: Duration = .milliseconds(20), _ condition: () throws -> Bool
) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        Thread.sleep(forTimeInterval: interval.seconds)
    }
}

/// The same wait in async code: checks `condition` every `interval`, suspending between checks
/// rather than blocking a thread (the servers under test need the cooperative threads), until it
/// holds or `timeout` has passed; returns whether it held.
@_disfavoredOverload
@discardableResult
public func waitUntil(
    timeout: Duration, interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}
