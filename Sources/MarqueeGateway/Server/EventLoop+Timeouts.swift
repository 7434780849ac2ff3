import CLinux
import Glibc

extension EventLoop {
    /// Puts `slot` at the tail of `kind`'s list with a fresh deadline (leaving any other list).
    mutating func startTimer(_ slot: Int32, _ kind: TimeoutKind) {
        stopTimer(slot)
        let list = Int(kind.rawValue)
        connections[Int(slot)].timerList = kind.rawValue
        connections[Int(slot)].deadline = nowMilliseconds + timeouts[list]
        connections[Int(slot)].timerNext = -1
        connections[Int(slot)].timerPrev = timerTails[list]
        if timerTails[list] >= 0 {
            connections[Int(timerTails[list])].timerNext = slot
        } else {
            timerHeads[list] = slot
        }
        timerTails[list] = slot
    }

    mutating func stopTimer(_ slot: Int32) {
        let list = Int(connections[Int(slot)].timerList)
        guard list >= 0 else { return }
        let prev = connections[Int(slot)].timerPrev
        let next = connections[Int(slot)].timerNext
        if prev >= 0 { connections[Int(prev)].timerNext = next } else { timerHeads[list] = next }
        if next >= 0 { connections[Int(next)].timerPrev = prev } else { timerTails[list] = prev }
        connections[Int(slot)].timerList = -1
        connections[Int(slot)].timerPrev = -1
        connections[Int(slot)].timerNext = -1
    }

    /// Ends every connection whose deadline has passed; each list is sorted, so only heads are examined.
    mutating func expireTimers() {
        for kind in TimeoutKind.allCases {
            let list = Int(kind.rawValue)
            while timerHeads[list] >= 0 && connections[Int(timerHeads[list])].deadline <= nowMilliseconds {
                let slot = timerHeads[list]
                switch kind {
                case .header: metrics.add(.headerTimeouts)
                case .idle: metrics.add(.idleTimeouts)
                case .send: metrics.add(.sendTimeouts)
                case .body: metrics.add(.bodyTimeouts)
                case .linger, .upstream: break
                }
                stopTimer(slot)
                switch kind {
                case .upstream: upstreamTimedOut(slot)
                case .body: bodyTimedOut(slot)
                default: abort(slot)
                }
            }
        }
    }
}
