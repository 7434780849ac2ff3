import Glibc

/// A joinable pthread running one closure: the Redis command and subscriber threads must be real
/// OS threads (they block in hiredis), and Foundation's `Thread` is not used in Sources.
final class RedisThread: @unchecked Sendable {
    // @unchecked Sendable: `handle` is written once in `init` before any other thread can see the
    // object and read only by `join`, which the owner calls once.
    private var handle = pthread_t()
    private var joined = false

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts the thread. Traps if the system refuses a thread: without it the feature cannot work
    /// and the gateway should not start pretending it does.
    init(_ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let status = pthread_create(&handle, nil, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            body.run()
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed: \(status)")
    }

    /// Waits for the thread to finish. Call once, never from the thread itself.
    func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }
}
