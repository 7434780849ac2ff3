import CURing
import Glibc

/// One io_uring, owned and driven by one thread (IORING_SETUP_SINGLE_ISSUER). A thin value over a
/// stable pointer: copying it copies the handle, not the ring.
///
/// Setup prefers `SINGLE_ISSUER | DEFER_TASKRUN` (completions are processed only when the owner
/// waits, in one batch) and falls back to plainer flags on kernels that refuse them.
public struct Ring {
    public let raw: UnsafeMutablePointer<io_uring>
    /// Setup flags the kernel accepted.
    public let setupFlags: UInt32

    public enum SetupError: Error, CustomStringConvertible {
        case failed(errno: Int32)
        public var description: String {
            switch self {
            case .failed(let e): "io_uring_queue_init_params failed: \(String(cString: strerror(e)))"
            }
        }
    }

    /// - Parameters:
    ///   - entries: submission queue size; the completion queue is `completionMultiplier` times larger.
    public init(entries: UInt32, completionMultiplier: UInt32 = 8) throws(SetupError) {
        raw = .allocate(capacity: 1)
        raw.initialize(to: io_uring())
        let candidates: [UInt32] = [
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
            IORING_SETUP_SUBMIT_ALL,
            0,
        ]
        var lastError: Int32 = 0
        for flags in candidates {
            var params = io_uring_params()
            params.flags = flags | IORING_SETUP_CQSIZE
            params.cq_entries = entries * completionMultiplier
            let rc = io_uring_queue_init_params(entries, raw, &params)
            if rc == 0 {
                setupFlags = flags
                // Saves a file-table lookup on every io_uring_enter.
                _ = io_uring_register_ring_fd(raw)
                return
            }
            lastError = -rc
        }
        raw.deallocate()
        throw .failed(errno: lastError)
    }

    public func close() {
        io_uring_queue_exit(raw)
        raw.deallocate()
    }

    /// A submission entry, submitting what is queued first when the queue is full.
    @inline(__always) public func submissionEntry() -> UnsafeMutablePointer<io_uring_sqe> {
        if let sqe = io_uring_get_sqe(raw) { return sqe }
        _ = io_uring_submit(raw)
        // After a submit the queue has room (SUBMIT_ALL consumes every entry).
        return io_uring_get_sqe(raw)!
    }

    /// Free submission slots; a linked chain must fit entirely before it is started.
    @inline(__always) public var spaceLeft: UInt32 { io_uring_sq_space_left(raw) }

    /// Makes room for `count` entries, submitting what is queued if needed.
    @inline(__always) public func reserve(_ count: UInt32) {
        if io_uring_sq_space_left(raw) < count { _ = io_uring_submit(raw) }
    }

    /// Submits everything queued and waits for at least `minimum` completions: the loop's one
    /// syscall per turn.
    @inline(__always) @discardableResult
    public func submitAndWait(_ minimum: UInt32) -> Int32 {
        io_uring_submit_and_wait(raw, minimum)
    }

    /// Copies up to `into.count` ready completions into `into`; returns how many.
    @inline(__always) public func peekBatch(into: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>, count: UInt32) -> UInt32 {
        io_uring_peek_batch_cqe(raw, into, count)
    }

    /// Marks `count` completions consumed.
    @inline(__always) public func advance(_ count: UInt32) {
        io_uring_cq_advance(raw, count)
    }

    /// Whether the kernel supports an opcode.
    public func supports(_ opcode: io_uring_op) -> Bool {
        guard let probe = io_uring_get_probe_ring(raw) else { return false }
        defer { io_uring_free_probe(probe) }
        return io_uring_opcode_supported(probe, Int32(opcode.rawValue)) != 0
    }
}
