import CURing
import Glibc

/// A ring of provided buffers (IORING_REGISTER_PBUF_RING): the kernel picks a free buffer for each
/// receive, so idle connections hold no receive memory. liburing 2.3 has no
/// `io_uring_setup_buf_ring`, so the ring memory is mapped and registered here.
public struct ProvidedBuffers {
    public let groupID: UInt16
    public let count: UInt32
    public let bufferSize: UInt32
    let ringMemory: UnsafeMutableRawPointer
    let ringBytes: Int
    public let storage: UnsafeMutableRawPointer
    let ring: UnsafeMutablePointer<io_uring_buf_ring>
    let mask: Int32

    public enum SetupError: Error, CustomStringConvertible {
        case registration(errno: Int32)
        case memory
        public var description: String {
            switch self {
            case .registration(let e): "registering the provided-buffer ring failed: \(String(cString: strerror(e)))"
            case .memory: "could not map the provided-buffer ring"
            }
        }
    }

    /// - Parameters:
    ///   - count: number of buffers, a power of two.
    ///   - bufferSize: bytes per buffer.
    public init(on uring: Ring, groupID: UInt16, count: UInt32, bufferSize: UInt32) throws(SetupError) {
        precondition(count.nonzeroBitCount == 1, "buffer count must be a power of two")
        self.groupID = groupID
        self.count = count
        self.bufferSize = bufferSize
        ringBytes = Int(count) * MemoryLayout<io_uring_buf>.stride
        guard let mapped = mmap(nil, ringBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            mapped != MAP_FAILED
        else { throw .memory }
        ringMemory = mapped
        ring = mapped.assumingMemoryBound(to: io_uring_buf_ring.self)
        var reg = io_uring_buf_reg()
        reg.ring_addr = UInt64(UInt(bitPattern: mapped))
        reg.ring_entries = count
        reg.bgid = groupID
        let rc = io_uring_register_buf_ring(uring.raw, &reg, 0)
        guard rc == 0 else {
            munmap(mapped, ringBytes)
            throw .registration(errno: -rc)
        }
        io_uring_buf_ring_init(self.ring)
        mask = io_uring_buf_ring_mask(count)
        storage = UnsafeMutableRawPointer.allocate(byteCount: Int(count) * Int(bufferSize), alignment: 4096)
        for id in 0..<count {
            io_uring_buf_ring_add(self.ring, storage + Int(id) * Int(bufferSize), bufferSize, UInt16(id), mask, Int32(id))
        }
        io_uring_buf_ring_advance(self.ring, Int32(count))
    }

    /// The bytes the kernel wrote into buffer `id`.
    @inline(__always) public func bytes(id: UInt16, count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage + Int(id) * Int(bufferSize), count: count)
    }

    /// Gives buffer `id` back to the kernel.
    @inline(__always) public func recycle(id: UInt16) {
        io_uring_buf_ring_add(ring, storage + Int(id) * Int(bufferSize), bufferSize, id, mask, 0)
        io_uring_buf_ring_advance(ring, 1)
    }
}
