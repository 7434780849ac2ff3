import CLinux
import CURing
import Glibc
import Histogram
import MarqueeRing
import Synchronization

/// A closed-loop maximum-rate load (`marquee loadtest --raw`, like wrk): each connection sends a
/// GET, reads the whole response, and sends the next at once, on keep-alive connections (a new
/// one when the server closes). One ring and thread per `threads`; connections are spread over
/// them. Latency runs from a request's send to its response's last byte.
public final class RawLoad: Sendable {
    public let target: LoadTarget
    public let connections: Int
    public let threads: Int
    public let durationSeconds: Double
    /// Counters the threads bump as they go, for the progress line (one per thread).
    let progress: [LiveProgress]

    public init(target: LoadTarget, connections: Int, threads: Int, durationSeconds: Double) {
        self.target = target
        self.connections = connections
        self.threads = max(1, min(threads, connections))
        self.durationSeconds = durationSeconds
        progress = (0..<max(1, min(threads, connections))).map { _ in LiveProgress() }
    }

    /// Runs the load; `report` is called about once a second with (seconds so far, requests,
    /// failures and error responses, the worst thread's p99 µs over the last second).
    public func run(report: (Double, UInt64, UInt64, UInt64) -> Void = { _, _, _, _ in }) throws(LoadTarget.Problem) -> LoadResults {
        let start = monotonicNanoseconds()
        let deadline = start + UInt64(durationSeconds * 1e9)
        let parts = try runOnThreads(threads, start: start, deadline: deadline) { [self] t throws(LoadTarget.Problem) in
            let share = connections / threads + (t < connections % threads ? 1 : 0)
            var worker = try RawLoadWorker(target: target, connections: share, deadline: deadline, progress: progress[t])
            return worker.run()
        } eachSecond: { seconds in
            let requests = progress.reduce(0) { $0 + $1.requests.load(ordering: .relaxed) }
            let errors = progress.reduce(0) { $0 + $1.errors.load(ordering: .relaxed) }
            let p99 = progress.map { $0.intervalP99.load(ordering: .relaxed) }.max() ?? 0
            report(seconds, requests, errors, p99)
        }
        var merged = LoadResults()
        for part in parts { merged.add(part) }
        return merged
    }
}

/// Runs `work(t)` for t in 0..<`threads`, each on an OS thread of its own (its own ring), and
/// calls `eachSecond` a little after every second until `deadline` (once the threads' ticks have
/// closed that second) while they run. Returns what they returned, or the first one's error.
func runOnThreads<Part: Sendable>(
    _ threads: Int, start: UInt64, deadline: UInt64, _ work: @escaping @Sendable (Int) throws(LoadTarget.Problem) -> Part,
    eachSecond: (Double) -> Void
) throws(LoadTarget.Problem) -> [Part] {
    let parts = Mutex<[Part]>([])
    let failure = Mutex<String?>(nil)
    let done = Atomic<Int>(0)
    var threadIDs: [pthread_t] = []
    for t in 0..<threads {
        let box = ThreadStart {
            do throws(LoadTarget.Problem) {
                let part = try work(t)
                parts.withLock { $0.append(part) }
            } catch {
                failure.withLock { $0 = error.description }
            }
            done.add(1, ordering: .releasing)
        }
        var thread = pthread_t()
        let raw = Unmanaged.passRetained(box).toOpaque()
        guard pthread_create(&thread, nil, { ThreadStart.run($0) }, raw) == 0 else {
            Unmanaged<ThreadStart>.fromOpaque(raw).release()
            throw LoadTarget.Problem(description: "cannot start a load thread: \(String(cString: strerror(errno)))")
        }
        threadIDs.append(thread)
    }
    var nextSecond = start + 1_150_000_000
    while done.load(ordering: .acquiring) < threads {
        usleep(50_000)
        let now = monotonicNanoseconds()
        if now >= nextSecond && now < deadline {
            nextSecond += 1_000_000_000
            eachSecond(Double(now - start) / 1e9)
        }
    }
    for thread in threadIDs { pthread_join(thread, nil) }
    if let problem = failure.withLock({ $0 }) { throw LoadTarget.Problem(description: problem) }
    return parts.withLock { $0 }
}

/// What a thread has done so far, readable by the main thread while it runs.
final class LiveProgress: Sendable {
    let requests = Atomic<UInt64>(0)
    let errors = Atomic<UInt64>(0)
    let intervalP99 = Atomic<UInt64>(0)
    /// Player mode: stalls so far (a stall counts once the viewer's model has seen it start), and
    /// viewers playing now.
    let stalls = Atomic<UInt64>(0)
    let activeViewers = Atomic<Int>(0)
}

final class ThreadStart {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
    static func run(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
        let start = Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue()
        start.body()
        return nil
    }
}

@inline(__always) func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// One thread's connections on its own ring.
struct RawLoadWorker: ~Copyable {
    enum Step: UInt8 {
        case connect = 1, send, receive, tick, ignored
    }

    struct Connection {
        var fd: Int32 = -1
        var generation: UInt16 = 0
        var sent = 0
        var startNanoseconds: UInt64 = 0
        var reader = ResponseReader(maxHeadBytes: RawLoadWorker.maxHeadBytes)
        /// An operation of it is in the ring.
        var busy = false
        /// Waiting for the next tick to connect again (after a refused connect).
        var retry = false
    }

    static let maxHeadBytes = 16 * 1024
    static let tickNanoseconds: Int64 = 100_000_000
    /// Each connection's receive area: large when there are few connections (a 2 MB body in
    /// 256 KiB receives, not 128 of 16 KiB), at least a head's room when there are many; about
    /// 32 MiB in all.
    let areaBytes: Int

    let target: LoadTarget
    let count: Int
    let deadline: UInt64
    let progress: LiveProgress
    let ring: Ring
    let connections: UnsafeMutablePointer<Connection>
    let areas: UnsafeMutableRawPointer
    let request: UnsafeMutableRawPointer
    let address: UnsafeMutablePointer<sockaddr_storage>
    let tickSpec: UnsafeMutablePointer<__kernel_timespec>
    let completions: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    var results = LoadResults()
    var interval = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .two)
    var nextInterval: UInt64 = 0
    var now: UInt64 = 0

    init(target: LoadTarget, connections count: Int, deadline: UInt64, progress: LiveProgress) throws(LoadTarget.Problem) {
        do {
            ring = try Ring(entries: UInt32(max(64, min(4096, count * 2 + 8))))
        } catch {
            throw LoadTarget.Problem(description: "cannot set up an io_uring: \(error)")
        }
        self.target = target
        self.count = count
        self.deadline = deadline
        self.progress = progress
        connections = .allocate(capacity: max(1, count))
        connections.initialize(repeating: Connection(), count: max(1, count))
        areaBytes = min(256 * 1024, max(Self.maxHeadBytes, (32 << 20) / max(1, count) / 4096 * 4096))
        areas = .allocate(byteCount: max(1, count) * areaBytes, alignment: 64)
        let request = UnsafeMutableRawPointer.allocate(byteCount: target.request.count, alignment: 16)
        target.request.withUnsafeBytes { request.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        self.request = request
        address = .allocate(capacity: 1)
        address.initialize(to: target.address)
        tickSpec = .allocate(capacity: 1)
        tickSpec.initialize(to: __kernel_timespec(tv_sec: 0, tv_nsec: Self.tickNanoseconds))
        completions = .allocate(capacity: 256)
    }

    deinit {
        for i in 0..<count where connections[i].fd >= 0 { close(connections[i].fd) }
        ring.close()
        connections.deallocate()
        areas.deallocate()
        request.deallocate()
        address.deallocate()
        tickSpec.deallocate()
        completions.deallocate()
    }

    @inline(__always) static func userData(_ step: Step, _ index: Int, _ generation: UInt16) -> UInt64 {
        UInt64(step.rawValue) << 56 | UInt64(generation) << 32 | UInt64(UInt32(index))
    }

    mutating func run() -> LoadResults {
        let start = monotonicNanoseconds()
        now = start
        nextInterval = start + 1_000_000_000
        for i in 0..<count { connect(i) }
        armTick()
        while now < deadline {
            _ = ring.submitAndWait(1)
            now = monotonicNanoseconds()
            while true {
                let n = ring.peekBatch(into: completions, count: 256)
                if n == 0 { break }
                for k in 0..<Int(n) {
                    let cqe = completions[k]!
                    handle(cqe.pointee.user_data, cqe.pointee.res)
                }
                ring.advance(n)
            }
        }
        // Requests in flight at the deadline are not counted (as wrk does not).
        results.elapsedSeconds = Double(min(now, deadline) - start) / 1e9
        return results
    }

    mutating func handle(_ data: UInt64, _ result: Int32) {
        guard let step = Step(rawValue: UInt8(truncatingIfNeeded: data >> 56)) else { return }
        if step == .tick {
            onTick()
            return
        }
        if step == .ignored { return }
        let i = Int(UInt32(truncatingIfNeeded: data))
        guard i < count, connections[i].generation == UInt16(truncatingIfNeeded: data >> 32) else { return }
        connections[i].busy = false
        switch step {
        case .connect:
            guard result >= 0 else {
                results.connectFailures += 1
                progress.errors.add(1, ordering: .relaxed)
                drop(i, retryLater: true)
                return
            }
            send(i)
        case .send:
            guard result > 0 else { return sendFailed(i) }
            connections[i].sent += Int(result)
            if connections[i].sent < target.request.count {
                submitSend(i)
            } else {
                receive(i, offset: 0)
            }
        case .receive:
            let area = UnsafeMutableRawBufferPointer(start: areas + i * areaBytes, count: areaBytes)
            let next: ResponseReader.Step
            if result > 0 {
                results.bytes += UInt64(result)
                next = connections[i].reader.received(Int(result), in: area)
            } else {
                next = connections[i].reader.ended()
            }
            switch next {
            case .receive(let offset):
                receive(i, offset: offset)
            case .complete(let status, let reusable):
                completed(i, status: status)
                if now >= deadline { return }
                if reusable { send(i) } else { drop(i, retryLater: false) }
            case .failed(let why):
                results.readFailures[why, default: 0] += 1
                progress.errors.add(1, ordering: .relaxed)
                drop(i, retryLater: false)
            }
        case .tick, .ignored:
            break
        }
    }

    mutating func completed(_ i: Int, status: Int) {
        let micros = max(1, (now &- connections[i].startNanoseconds) / 1000)
        _ = results.latency.record(micros)
        _ = interval.record(micros)
        results.requests += 1
        results.statuses[min(status, 599)] += 1
        progress.requests.add(1, ordering: .relaxed)
        if status >= 400 { progress.errors.add(1, ordering: .relaxed) }
    }

    mutating func sendFailed(_ i: Int) {
        results.sendFailures += 1
        progress.errors.add(1, ordering: .relaxed)
        drop(i, retryLater: false)
    }

    /// Closes the connection and opens another (at once, or at the next tick after a refusal).
    mutating func drop(_ i: Int, retryLater: Bool) {
        if connections[i].fd >= 0 {
            close(connections[i].fd)
            connections[i].fd = -1
        }
        connections[i].generation &+= 1
        if retryLater {
            connections[i].retry = true
        } else if now < deadline {
            connect(i)
        }
    }

    mutating func connect(_ i: Int) {
        connections[i].retry = false
        let family = Int32(target.address.ss_family)
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            results.connectFailures += 1
            connections[i].retry = true
            return
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        connections[i].fd = fd
        let sqe = ring.submissionEntry()
        address.withMemoryRebound(to: sockaddr.self, capacity: 1) { io_uring_prep_connect(sqe, fd, $0, target.addressLength) }
        io_uring_sqe_set_data64(sqe, Self.userData(.connect, i, connections[i].generation))
        connections[i].busy = true
    }

    /// Starts the next request on the connection.
    mutating func send(_ i: Int) {
        connections[i].sent = 0
        connections[i].reader.reset()
        connections[i].startNanoseconds = now
        submitSend(i)
    }

    mutating func submitSend(_ i: Int) {
        let sqe = ring.submissionEntry()
        let sent = connections[i].sent
        io_uring_prep_send(sqe, connections[i].fd, request + sent, target.request.count - sent, Int32(MSG_NOSIGNAL))
        io_uring_sqe_set_data64(sqe, Self.userData(.send, i, connections[i].generation))
        connections[i].busy = true
    }

    mutating func receive(_ i: Int, offset: Int) {
        let sqe = ring.submissionEntry()
        io_uring_prep_recv(sqe, connections[i].fd, areas + i * areaBytes + offset, areaBytes - offset, 0)
        io_uring_sqe_set_data64(sqe, Self.userData(.receive, i, connections[i].generation))
        connections[i].busy = true
    }

    mutating func armTick() {
        let sqe = ring.submissionEntry()
        io_uring_prep_timeout(sqe, tickSpec, 0, 0)
        io_uring_sqe_set_data64(sqe, Self.userData(.tick, 0, 0))
    }

    mutating func onTick() {
        armTick()
        if now >= nextInterval {
            nextInterval += 1_000_000_000
            progress.intervalP99.store(interval.totalCount > 0 ? interval.valueAtPercentile(99) : 0, ordering: .relaxed)
            interval.reset()
        }
        guard now < deadline else { return }
        for i in 0..<count where connections[i].retry { connect(i) }
    }
}
