import CFFmpeg
import Foundation
import Testing

@testable import MarqueeMedia

/// The queue between decoding and a rung's encoding thread: order kept, a full queue holds the
/// producer back, and a consumer that gives up frees what waits and releases the producer.
@Suite("Frame queue")
struct FrameQueueTests {
    static func frame(_ pts: Int64) -> UnsafeMutablePointer<AVFrame> {
        let frame = av_frame_alloc()!
        frame.pointee.pts = pts
        return frame
    }

    @Test("Frames come out in order, then the end")
    func order() {
        let queue = FrameQueue(capacity: 2)
        let consumer = Thread {
            var seen: [Int64] = []
            while let item = queue.pop() {
                guard case .frame(let frame) = item else { break }
                seen.append(frame.pointee.pts)
                FrameQueue.free(frame)
            }
            #expect(seen == Array(0..<50))
        }
        consumer.start()
        for pts in 0..<50 { #expect(queue.push(.frame(Self.frame(Int64(pts))))) }
        #expect(queue.push(.end))
        while !consumer.isFinished { usleep(1000) }
    }

    @Test("A producer waiting on a full queue is released, refused, when the consumer closes it")
    func closeReleasesProducer() async {
        let queue = FrameQueue(capacity: 1)
        #expect(queue.push(.frame(Self.frame(0))))
        let refused = DispatchSemaphore(value: 0)
        let producer = Thread {
            if !queue.push(.frame(Self.frame(1))) { refused.signal() }
        }
        producer.start()
        usleep(20_000)
        queue.close()
        #expect(refused.wait(timeout: .now() + 5) == .success, "the blocked push returned false")
        #expect(queue.pop() == nil)
    }
}
