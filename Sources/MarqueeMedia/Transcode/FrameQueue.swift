import CFFmpeg
import Foundation

/// A short queue of decoded pictures (owned references) from the decoding thread to one rung's
/// encoding thread. The producer blocks while it is full, so a slow rung holds decoding back
/// instead of piling frames up in memory.
final class FrameQueue: @unchecked Sendable {
    enum Item {
        case frame(UnsafeMutablePointer<AVFrame>)
        /// The source ended: flush the encoder.
        case end
    }

    private let condition = NSCondition()
    private var items: [Item] = []
    private let capacity: Int
    /// The consumer gave up (an error) or was told to stop: pushes are refused and freed.
    private var closed = false

    init(capacity: Int) {
        self.capacity = capacity
        items.reserveCapacity(capacity)
    }

    deinit { drop() }

    /// Hands `item` over (the queue owns the frame from here on); false when the consumer is gone.
    @discardableResult
    func push(_ item: Item) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && !closed { condition.wait() }
        guard !closed else {
            if case .frame(let frame) = item { Self.free(frame) }
            return false
        }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// The next item, waiting for one; nil once closed.
    func pop() -> Item? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !closed { condition.wait() }
        guard !closed else { return nil }
        let item = items.removeFirst()
        condition.broadcast()
        return item
    }

    /// Refuses further items and frees those waiting; both sides wake.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
        drop()
    }

    private func drop() {
        condition.lock()
        let dropped = items
        items.removeAll()
        condition.unlock()
        for case .frame(let frame) in dropped { Self.free(frame) }
    }

    static func free(_ frame: UnsafeMutablePointer<AVFrame>) {
        var owned: UnsafeMutablePointer<AVFrame>? = frame
        av_frame_free(&owned)
    }
}
