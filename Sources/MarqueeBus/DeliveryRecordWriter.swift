import Glibc
import Synchronization

/// The gateway's one writer thread: drains every event loop's `RecordRing` in batches and hands
/// them to a carrier. It wakes every batch interval, or sooner when a loop finds its ring half
/// full (`wake()`), so a burst does not fill a ring between two batches. A plain thread, not a
/// task: it blocks on the carrier's I/O, which must never take a cooperative thread.
public final class DeliveryRecordWriter: @unchecked Sendable {
    public let rings: [RecordRing]
    let carrier: any DeliveryRecordCarrier
    let batchMilliseconds: Int32
    let flushMilliseconds: Int64
    /// A pipe: a byte on it is a loop's half-full signal, or `stop()`. Both ends non-blocking,
    /// so a loop never waits to write (a full pipe already holds a wake-up).
    let wakeFD: Int32
    let wakeWriteFD: Int32
    private let stopping = Atomic<Bool>(false)
    private let shippedCount = Atomic<UInt64>(0)
    private let errorCount = Atomic<UInt64>(0)
    private let batchCount = Atomic<UInt64>(0)
    private var thread: pthread_t?
    /// The carrier's last error, for one line on standard error per change rather than one per batch.
    private var lastError = ""

    /// - Parameters:
    ///   - rings: one per event loop.
    ///   - batchInterval: the longest a record waits in its ring (the bound on what a SIGKILL loses).
    ///   - flushInterval: the longest shipped records wait for `flush` when no more come (the
    ///     carrier's own cadence covers a steady stream: the log syncs as it appends).
    public init(
        rings: [RecordRing], carrier: any DeliveryRecordCarrier, batchInterval: Duration = .milliseconds(20),
        flushInterval: Duration = .milliseconds(100)
    ) {
        self.rings = rings
        self.carrier = carrier
        func milliseconds(_ d: Duration) -> Int64 { max(1, d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000) }
        batchMilliseconds = Int32(clamping: milliseconds(batchInterval))
        flushMilliseconds = milliseconds(flushInterval)
        var fds: [Int32] = [-1, -1]
        let rc = pipe(&fds)
        precondition(rc == 0, "pipe failed")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeFD = fds[0]
        wakeWriteFD = fds[1]
    }

    deinit {
        Glibc.close(wakeFD)
        Glibc.close(wakeWriteFD)
    }

    /// Records handed to the carrier.
    public var shipped: UInt64 { shippedCount.load(ordering: .relaxed) }
    /// Batches the carrier refused (their records stayed in the rings and were offered again).
    public var carrierErrors: UInt64 { errorCount.load(ordering: .relaxed) }
    /// Batches shipped.
    public var batches: UInt64 { batchCount.load(ordering: .relaxed) }
    /// Records refused by full rings, all loops together.
    public var dropped: UInt64 { rings.reduce(0) { $0 + UInt64($1.dropped) } }
    /// The carrier's own counters (read from another thread: plain loads of words it owns).
    public var carrierCounters: [(name: String, value: UInt64)] { carrier.counters }

    /// Asks the writer to drain now (a loop found its ring half full). One `write(2)`; safe from
    /// any thread.
    @inline(__always) public func wake() {
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)
    }

    /// Starts the thread.
    public func start() {
        precondition(thread == nil, "the writer is started once")
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { raw in
            let writer = Unmanaged<DeliveryRecordWriter>.fromOpaque(raw!).takeRetainedValue()
            writer.run()
            return nil
        }, Unmanaged.passRetained(self).toOpaque())
        precondition(rc == 0, "pthread_create failed")
        thread = t
    }

    /// Drains every ring, flushes and closes the carrier, and returns once the thread has ended.
    /// Call after the loops have stopped producing (the SIGTERM path), so nothing is left behind.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake()
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    func run() {
        var pollFD = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
        var flushedAt = Self.nowMilliseconds()
        while !stopping.load(ordering: .acquiring) {
            _ = poll(&pollFD, 1, batchMilliseconds)
            var bytes: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            while read(wakeFD, &bytes, MemoryLayout.size(ofValue: bytes)) > 0 {}
            drainOnce()
            // The carrier flushes on its own schedule too (the log syncs as it appends); this
            // bounds how long a quiet gateway leaves shipped records unflushed.
            let now = Self.nowMilliseconds()
            if now - flushedAt >= flushMilliseconds {
                flushedAt = now
                attempt { try carrier.flush() }
            }
        }
        // Stopping: the loops have ended, so what the rings hold is all there is.
        var rounds = 0
        while rings.contains(where: { $0.count > 0 }) && rounds < 1000 {
            drainOnce()
            rounds += 1
        }
        attempt { try carrier.close() }
    }

    /// One batch per ring: what it holds now.
    func drainOnce() {
        for ring in rings where ring.count > 0 {
            do {
                let taken = try ring.drain { records in try carrier.ship(records) }
                shippedCount.add(UInt64(taken), ordering: .relaxed)
                batchCount.add(1, ordering: .relaxed)
            } catch {
                errorCount.add(1, ordering: .relaxed)
                report(error)
                return  // the carrier is failing: try again at the next batch, not at once
            }
        }
    }

    private func attempt(_ body: () throws -> Void) {
        do { try body() } catch {
            errorCount.add(1, ordering: .relaxed)
            report(error)
        }
    }

    private func report(_ error: any Error) {
        let text = "\(error)"
        guard text != lastError else { return }
        lastError = text
        var line = "marquee: delivery records: the carrier failed: \(text)\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    static func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
