import Dispatch
import Testing
@testable import MarqueePolicy
import MarqueeTestSupport

@Suite("RevocationList")
struct RevocationListTests {
    @Test("revoke, look up, change reason, expire")
    func basics() {
        let list = RevocationList(capacity: 64)
        #expect(list.revoke("abc123", reason: .funds, expiresAt: 1000, nowSeconds: 10))
        #expect(list.isRevoked("abc123", nowSeconds: 10) == .funds)
        #expect(list.isRevoked("abc123", nowSeconds: 999) == .funds)
        #expect(list.isRevoked("abc123", nowSeconds: 1000) == nil)
        #expect(list.isRevoked("abc12", nowSeconds: 10) == nil)
        #expect(list.isRevoked("abc1234", nowSeconds: 10) == nil)
        #expect(list.isRevoked("abc124", nowSeconds: 10) == nil)
        #expect(list.revoke("abc123", reason: .other, expiresAt: 2000, nowSeconds: 10))
        #expect(list.isRevoked("abc123", nowSeconds: 1500) == .other)
        #expect(list.storedEntryCount() == 1)
        // An already expired revocation of an unknown id stores nothing.
        #expect(list.revoke("old", reason: .other, expiresAt: 5, nowSeconds: 10))
        #expect(list.storedEntryCount() == 1)
        #expect(RevocationReason("funds") == .funds && RevocationReason("other") == .other)
        #expect(RevocationReason("Funds") == nil && RevocationReason("") == nil)
        #expect(RevocationReason.funds.statusCode == 402 && RevocationReason.other.statusCode == 403)
    }

    @Test("expired slots are reused; a table with no free slot says so")
    func reuseAndFull() {
        let list = RevocationList(capacity: 64)
        // 32 entries always fit: a 32-slot probe window holds at most 31 others.
        for i in 0..<32 { #expect(list.revoke("s\(i)", reason: .other, expiresAt: 100, nowSeconds: 0)) }
        #expect(list.storedEntryCount(liveAt: 50) == 32)
        // At t=200 every entry has expired: 32 new ones fit again and the old ones are gone.
        for i in 0..<32 { #expect(list.revoke("n\(i)", reason: .funds, expiresAt: 300, nowSeconds: 200)) }
        for i in 0..<32 {
            #expect(list.isRevoked("n\(i)", nowSeconds: 250) == .funds)
            #expect(list.isRevoked("s\(i)", nowSeconds: 250) == nil)
        }
        #expect(list.storedEntryCount(liveAt: 250) == 32)
        // Keep adding live entries: the table eventually refuses, and says so, rather than drop one.
        var refused: String?
        for i in 0..<200 where !list.revoke("f\(i)", reason: .other, expiresAt: 300, nowSeconds: 200) {
            refused = "f\(i)"
            break
        }
        #expect(refused != nil)
        if let refused { #expect(list.isRevoked(refused, nowSeconds: 250) == nil) }
        #expect(list.storedEntryCount() <= 64)
    }

    @Test("hostile ids: malformed ones are refused, random bytes never match")
    func hostile() {
        let list = RevocationList(capacity: 1024)
        let longest = String(repeating: "x", count: 128)
        #expect(list.revoke(longest, reason: .funds, expiresAt: .max, nowSeconds: 0))
        #expect(list.isRevoked(longest, nowSeconds: 0) == .funds)
        #expect(list.isRevoked(longest + "x", nowSeconds: 0) == nil)
        #expect(list.isRevoked(String(longest.dropLast()), nowSeconds: 0) == nil)
        for bad in ["", String(repeating: "y", count: 129), "a b", "a\u{0}b", "é", "a/b", "a\nb", "\"x\"", "a%20"] {
            #expect(!list.revoke(bad, reason: .funds, expiresAt: 100, nowSeconds: 0), "\(bad.debugDescription)")
        }
        var generator = SeededGenerator(seed: 77)
        var stored: [[UInt8]] = []
        for _ in 0..<500 {
            let length = Int(generator.next() % 128) + 1
            let id = (0..<length).map { _ in Array("abcXYZ019._:-".utf8)[Int(generator.next() % 13)] }
            #expect(list.revoke(String(decoding: id, as: UTF8.self), reason: .other, expiresAt: 100, nowSeconds: 0))
            stored.append(id)
        }
        for id in stored { #expect(id.withUnsafeBytes { list.isRevoked($0, nowSeconds: 1) } == .other) }
        let known = Set(stored)
        for _ in 0..<20_000 {
            let bytes = generator.bytes(Int(generator.next() % 300))
            if known.contains(bytes) { continue }
            #expect(bytes.withUnsafeBytes { list.isRevoked($0, nowSeconds: 1) } == nil)
            // Near misses: a stored id with one byte changed, or with a NUL appended.
            var near = stored[Int(generator.next() % UInt64(stored.count))]
            near[Int(generator.next() % UInt64(near.count))] ^= 0x01
            if !known.contains(near) { #expect(near.withUnsafeBytes { list.isRevoked($0, nowSeconds: 1) } == nil) }
            var padded = stored[Int(generator.next() % UInt64(stored.count))]
            padded.append(0)
            #expect(padded.withUnsafeBytes { list.isRevoked($0, nowSeconds: 1) } == nil)
        }
        #expect(UnsafeRawBufferPointer(start: nil, count: 0).withMemoryRebound(to: UInt8.self) { _ in
            list.isRevoked(UnsafeRawBufferPointer(start: nil, count: 0), nowSeconds: 0)
        } == nil)
    }

    @Test("readers never miss a standing revocation while writers churn the table")
    func concurrentReaders() {
        let list = RevocationList(capacity: 64)
        let standing = (0..<8).map { "standing-\($0)" }
        for id in standing { #expect(list.revoke(id, reason: .funds, expiresAt: .max, nowSeconds: 0)) }
        final class Flags: @unchecked Sendable { var misses = [Int](repeating: 0, count: 4); var done = false }
        let flags = Flags()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            if worker == 0 {
                // Writer: short-lived revocations that expire and get their slots reused.
                for round in 0..<2000 {
                    let now = Int64(round)
                    for k in 0..<20 { list.revoke("churn-\(round)-\(k)", reason: .other, expiresAt: now + 1, nowSeconds: now) }
                }
            } else {
                var misses = 0
                for i in 0..<200_000 {
                    if list.isRevoked(standing[i & 7], nowSeconds: 1) != .funds { misses += 1 }
                    if list.isRevoked("never-revoked-\(i & 15)", nowSeconds: 1) != nil { misses += 1 }
                }
                flags.misses[worker] = misses
            }
        }
        #expect(flags.misses == [0, 0, 0, 0])
    }
}
