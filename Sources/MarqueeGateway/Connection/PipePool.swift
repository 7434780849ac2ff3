import CLinux
import Glibc

/// Pipes for splicing file pages to sockets, created on demand up to a limit and reused. A pipe
/// whose contents are unknown (a transfer failed half-way) is closed rather than returned.
struct PipePool {
    let limit: Int
    let requestedBytes: Int32
    private var readEnds: [Int32]
    private var writeEnds: [Int32]
    private var capacities: [Int32]
    private var free: [Int32]
    private(set) var created = 0

    init(limit: Int, pipeBytes: Int) {
        self.limit = limit
        requestedBytes = Int32(pipeBytes)
        readEnds = Array(repeating: -1, count: limit)
        writeEnds = Array(repeating: -1, count: limit)
        capacities = Array(repeating: 0, count: limit)
        free = []
        free.reserveCapacity(limit)
    }

    /// A pipe index, or -1 when all are busy (or the kernel refuses more).
    mutating func take() -> Int32 {
        if let index = free.popLast() { return index }
        guard let slot = readEnds.firstIndex(of: -1) else { return -1 }
        var fds: (Int32, Int32) = (-1, -1)
        let ok = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { mq_pipe($0, O_CLOEXEC | O_NONBLOCK) }
        }
        guard ok == 0 else { return -1 }
        // Ask for the chunk size; unprivileged users may get less, and the pipe's real size bounds each splice.
        var size = mq_set_pipe_size(fds.1, requestedBytes)
        if size < 0 { size = 65536 }
        readEnds[slot] = fds.0
        writeEnds[slot] = fds.1
        capacities[slot] = size
        created += 1
        return Int32(slot)
    }

    mutating func give(_ index: Int32) { free.append(index) }

    /// Closes a pipe that may still hold bytes of an aborted transfer.
    mutating func discard(_ index: Int32) {
        Glibc.close(readEnds[Int(index)])
        Glibc.close(writeEnds[Int(index)])
        readEnds[Int(index)] = -1
        writeEnds[Int(index)] = -1
        created -= 1
    }

    @inline(__always) func readEnd(_ index: Int32) -> Int32 { readEnds[Int(index)] }
    @inline(__always) func writeEnd(_ index: Int32) -> Int32 { writeEnds[Int(index)] }
    @inline(__always) func capacity(_ index: Int32) -> Int32 { capacities[Int(index)] }
}
