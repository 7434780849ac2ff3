import CTLS
import Foundation
import MarqueeTestSupport
import Testing

/// The thread caches OpenSSL allocates through (`Sources/CTLS/memory.h`), driven directly with
/// random sequences: every block keeps its bytes through reallocations, no two live blocks
/// overlap, and blocks freed on another thread are reused safely.
@Suite("OpenSSL's thread caches")
struct OpenSSLMemoryTests {
    struct Live { var pointer: UnsafeMutableRawPointer; var size: Int; var fill: UInt8 }

    /// Random mallocs, reallocs (growing and shrinking, across classes and into large blocks) and
    /// frees; each block is filled with its own byte and checked before every change.
    static func churn(seed: UInt64, steps: Int, keep: inout [Live]) {
        var random = SeededGenerator(seed: seed)
        for step in 0..<steps {
            let size = random.next() % 4 == 0 ? Int(random.next() % 20_000) : Int(random.next() % 600)
            switch random.next() % 3 {
            case 0 where !keep.isEmpty:
                let index = Int(random.next() % UInt64(keep.count))
                let block = keep.swapAt(index)
                #expect(intact(block), "block of \(block.size) bytes changed before step \(step)")
                mq_mem_free(block.pointer, #fileID, #line)
            case 1 where !keep.isEmpty:
                let index = Int(random.next() % UInt64(keep.count))
                let block = keep[index]
                #expect(intact(block))
                guard let moved = mq_mem_realloc(block.pointer, size, #fileID, #line) else {
                    #expect(size == 0, "realloc to \(size) bytes failed"); keep.remove(at: index); continue
                }
                let kept = min(block.size, size)
                #expect(moved.assumingMemoryBound(to: UInt8.self).withMemoryRebound(to: UInt8.self, capacity: kept) { bytes in
                    (0..<kept).allSatisfy { bytes[$0] == block.fill } }, "realloc from \(block.size) to \(size) lost bytes")
                moved.initializeMemory(as: UInt8.self, repeating: block.fill, count: size)
                keep[index] = Live(pointer: moved, size: size, fill: block.fill)
            default:
                guard let pointer = mq_mem_malloc(size, #fileID, #line) else { Issue.record("malloc(\(size)) failed"); return }
                #expect(Int(bitPattern: pointer) % 16 == 0, "a block must keep malloc's 16-byte alignment")
                let fill = UInt8(truncatingIfNeeded: random.next())
                pointer.initializeMemory(as: UInt8.self, repeating: fill, count: size)
                keep.append(Live(pointer: pointer, size: size, fill: fill))
            }
        }
    }

    static func intact(_ block: Live) -> Bool {
        let bytes = block.pointer.assumingMemoryBound(to: UInt8.self)
        return (0..<block.size).allSatisfy { bytes[$0] == block.fill }
    }

    @Test("Random allocations keep their bytes and never overlap")
    func randomSequencesKeepBytes() {
        var live: [Live] = []
        Self.churn(seed: 0x5eed, steps: 10_000, keep: &live)
        for block in live { #expect(Self.intact(block)) }
        let sorted = live.filter { $0.size > 0 }.sorted { $0.pointer < $1.pointer }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            #expect(a.pointer + a.size <= b.pointer, "two live blocks overlap")
        }
        for block in live { mq_mem_free(block.pointer, #fileID, #line) }
    }

    @Test("Blocks allocated on one thread and freed on another are reused intact")
    func crossThreadFrees() async {
        var first: [Live] = []
        Self.churn(seed: 1, steps: 5_000, keep: &first)
        let handed = first
        // Another thread frees these and goes on allocating from what it freed.
        let allIntact = await Task.detached { () -> Bool in
            for block in handed { mq_mem_free(block.pointer, #fileID, #line) }
            var second: [Live] = []
            Self.churn(seed: 2, steps: 5_000, keep: &second)
            let intact = second.allSatisfy(Self.intact)
            for block in second { mq_mem_free(block.pointer, #fileID, #line) }
            return intact
        }.value
        #expect(allIntact, "blocks on the second thread changed")
    }

    @Test("Sizes map to the classes they fit")
    func classes() {
        #expect(mq_mem_class_for(0) == 0)
        #expect(mq_mem_class_for(32) == 0)
        #expect(mq_mem_class_for(33) == 1)
        #expect(mq_mem_class_for(4096) == 7)
        #expect(mq_mem_class_for(4097) == 0xFF)
        for size in [1, 31, 64, 65, 1000, 2048, 4000] {
            #expect(mq_mem_class_size(mq_mem_class_for(size)) >= size)
        }
    }
}

extension Array {
    /// Removes the element at `index` by moving the last one there.
    mutating func swapAt(_ index: Int) -> Element {
        swapAt(index, count - 1)
        return removeLast()
    }
}
