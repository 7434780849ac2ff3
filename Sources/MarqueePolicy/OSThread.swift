import Glibc

/// An OS thread running one closure. The gateway's long-lived workers (event loops, cache fetch
/// threads, Redis command and subscriber threads, the admin listener, feeds and probes) block in
/// system calls or C libraries, so they are real threads rather than tasks; Foundation's `Thread`
/// is not used in Sources.
public final class OSThread: @unchecked Sendable {
    // @unchecked Sendable: `handle` is written once in `init` before any other thread can see the
    // object and read only by `join`, which the owner calls once.
    private var handle = pthread_t()
    private var joined = false

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts the thread, to be joined. Traps if the system refuses a thread: without it the part
    /// it runs cannot work, and the gateway should not start pretending it does.
    public init(_ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let status = pthread_create(&handle, nil, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            body.run()
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed: \(status)")
    }

    /// Starts a thread that lives on its own (nobody joins it).
    public static func detach(_ body: @escaping @Sendable () -> Void) {
        let thread = OSThread(body)
        thread.joined = true
        pthread_detach(thread.handle)
    }

    /// Waits for the thread to finish. Call once, never from the thread itself.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }
}
