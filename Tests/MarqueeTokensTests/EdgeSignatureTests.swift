import MarqueeTestSupport
import MarqueeTokens
import Testing

@Suite("Edge signatures (Marquee-Edge)")
struct EdgeSignatureTests {
    static let secret = Array("a shared edge key, thirty-two bytes or more".utf8)

    static func check(_ signature: EdgeSignature, _ value: String, path: String, now: Int64) -> EdgeSignature.Check {
        Array(value.utf8).withUnsafeBytes { v in Array(path.utf8).withUnsafeBytes { signature.verify(v, absolutePath: $0, nowSeconds: now) } }
    }

    @Test("a signature verifies for its path until it expires; another path, key or edge id does not")
    func roundTrip() throws {
        let signature = try EdgeSignature(secrets: [Self.secret])
        let value = signature.sign(edgeID: "edge-1.eu-west", absolutePath: "/titles/a/v1/seg-1.m4s", expires: 1_000_100)
        #expect(Self.check(signature, value, path: "/titles/a/v1/seg-1.m4s", now: 1_000_000) == .valid)
        #expect(Self.check(signature, value, path: "/titles/a/v1/seg-2.m4s", now: 1_000_000) == .badSignature)
        #expect(Self.check(signature, value, path: "/titles/a/v1/seg-1.m4s", now: 1_000_101) == .expired)
        let other = try EdgeSignature(secrets: [Array("another key, also thirty-two bytes long!".utf8)])
        #expect(Self.check(other, value, path: "/titles/a/v1/seg-1.m4s", now: 1_000_000) == .badSignature)
        let renamed = value.replacingFirst("edge-1.eu-west", with: "edge-2.eu-west")
        #expect(Self.check(signature, renamed, path: "/titles/a/v1/seg-1.m4s", now: 1_000_000) == .badSignature)
        // The edge id ends where the path's slash begins: moving bytes between them breaks it.
        let shifted = signature.sign(edgeID: "edge-1t", absolutePath: "/itles", expires: 1_000_100)
        #expect(Self.check(signature, shifted, path: "/titles", now: 1_000_000) != .valid)
    }

    @Test("a rotated-in key verifies alongside the old one; the first key signs")
    func rotation() throws {
        let next = Array("the next shared edge key, also 32+ bytes".utf8)
        let both = try EdgeSignature(secrets: [next, Self.secret])
        let old = try EdgeSignature(secrets: [Self.secret])
        let byOld = old.sign(edgeID: "e", absolutePath: "/x", expires: 2_000)
        #expect(Self.check(both, byOld, path: "/x", now: 1_000) == .valid)
        #expect(Self.check(old, both.sign(edgeID: "e", absolutePath: "/x", expires: 2_000), path: "/x", now: 1_000) == .badSignature)
    }

    @Test("short keys and an empty key list are refused")
    func keys() {
        #expect(throws: TokenKeyError.self) { try EdgeSignature(secrets: []) }
        #expect(throws: TokenKeyError.self) { try EdgeSignature(secrets: [Array("short".utf8)]) }
    }

    @Test("hostile values: far-future expiry, bad edge ids, truncations and random bytes are malformed or forged, never valid")
    func hostile() throws {
        let signature = try EdgeSignature(secrets: [Self.secret])
        let good = signature.sign(edgeID: "edge", absolutePath: "/p", expires: 5_000)
        #expect(Self.check(signature, signature.sign(edgeID: "edge", absolutePath: "/p", expires: 1_000 + 7200), path: "/p", now: 1_000) == .malformed)
        #expect(Self.check(signature, signature.sign(edgeID: "ed ge", absolutePath: "/p", expires: 5_000), path: "/p", now: 1_000) == .malformed)
        for cut in 0..<good.utf8.count {
            #expect(Self.check(signature, String(good.prefix(cut)), path: "/p", now: 1_000) != .valid)
        }
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            var bytes = Array(good.utf8)
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            let check = bytes.withUnsafeBytes { v in Array("/p".utf8).withUnsafeBytes { signature.verify(v, absolutePath: $0, nowSeconds: 1_000) } }
            if bytes != Array(good.utf8) { #expect(check != .valid, "\(bytes)") }
        }
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(target) {
                return String(self[..<index]) + replacement + String(self[self.index(index, offsetBy: target.count)...])
            }
            index = self.index(after: index)
        }
        return self
    }
}
