import Foundation
import MarqueeHTTP
import MarqueeTestSupport
import Testing

@testable import MarqueeTokens

let testSecret = Array("marquee-test-secret-0123456789abcdef".utf8)
let ring = try! TokenKeyRing([("test1", testSecret), ("test2", Array("another-secret-another-secret-another".utf8))])
let viewer = IPAddress("198.51.100.7")!

/// Verifies `token` for `path` (with its leading slash) as the gateway does.
func check(_ token: String, path: String, client: IPAddress = viewer, now: Int64 = 1_800_000_000, keys: TokenKeyRing = ring) -> TokenCheck {
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: TokenVerifier.maximumTokenBytes, alignment: 16)
    defer { scratch.deallocate() }
    var token = token
    var path = String(path.dropFirst())
    return token.withUTF8 { t in
        path.withUTF8 { p in
            TokenVerifier.verify(
                UnsafeRawBufferPointer(t), path: UnsafeRawBufferPointer(p), client: client, nowSeconds: now, keys: keys, scratch: scratch)
        }
    }
}

func isGranted(_ result: TokenCheck) -> Bool {
    if case .granted = result { return true }
    return false
}

@Suite struct TestVectors {
    // The vectors published in docs/url-token.md, computed with Python's hmac module.
    static let vectors: [(claims: TokenClaims, token: String)] = [
        (
            TokenClaims(keyID: "test1", expires: 1_893_456_000, scope: "/titles/demo/"),
            "v1.az10ZXN0MSZlPTE4OTM0NTYwMDAmcz0vdGl0bGVzL2RlbW8v.-gQu3G5z2_mW7CDSeWdK_PzIaBV6A8Is6pd-6gcv-Og"
        ),
        (
            TokenClaims(
                keyID: "test1", expires: 1_893_456_000, notBefore: 1_700_000_000, scope: "/titles/demo/", session: "sess-42",
                client: CIDR("203.0.113.0/24")),
            "v1.az10ZXN0MSZlPTE4OTM0NTYwMDAmbmI9MTcwMDAwMDAwMCZzPS90aXRsZXMvZGVtby8mc2lkPXNlc3MtNDImaXA9MjAzLjAuMTEzLjAvMjQ.goOrVtFHK76AtxiAYZhPnetLR3HxdRavgrMAYu8KSZU"
        ),
        (
            TokenClaims(keyID: "test1", expires: 1_893_456_000, scope: "/titles/demo/1/master.m3u8", client: CIDR("2001:db8::/32")),
            "v1.az10ZXN0MSZlPTE4OTM0NTYwMDAmcz0vdGl0bGVzL2RlbW8vMS9tYXN0ZXIubTN1OCZpcD0yMDAxOmRiODo6LzMy.I6uU0RKGEmMNbwvoQ_UVajpaDKeZIzD0ZW_qv6aBa80"
        ),
    ]

    @Test func mintingMatchesThePublishedVectors() throws {
        for (claims, token) in Self.vectors {
            #expect(try URLToken.mint(claims, keys: ring) == token)
        }
    }

    @Test func publishedVectorsVerify() {
        #expect(isGranted(check(Self.vectors[0].token, path: "/titles/demo/1/master.m3u8")))
        #expect(isGranted(check(Self.vectors[1].token, path: "/titles/demo/1/v0/seg-1.m4s", client: IPAddress("203.0.113.9")!)))
        #expect(isGranted(check(Self.vectors[2].token, path: "/titles/demo/1/master.m3u8", client: IPAddress("2001:db8:1::5")!)))
    }

    @Test func sessionIDIsReturned() throws {
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: TokenVerifier.maximumTokenBytes, alignment: 16)
        defer { scratch.deallocate() }
        var token = Self.vectors[1].token
        var path = "titles/demo/a.m4s"
        let result = token.withUTF8 { t in
            path.withUTF8 { p in
                TokenVerifier.verify(
                    UnsafeRawBufferPointer(t), path: UnsafeRawBufferPointer(p), client: IPAddress("203.0.113.1")!, nowSeconds: 1_800_000_000,
                    keys: ring, scratch: scratch)
            }
        }
        guard case .granted(let start, let count) = result else {
            Issue.record("refused: \(result)")
            return
        }
        #expect(String(decoding: UnsafeRawBufferPointer(start: scratch + start, count: count), as: UTF8.self) == "sess-42")
    }
}

@Suite struct Refusals {
    let token = try! URLToken.mint(TokenClaims(keyID: "test1", expires: 1_800_000_100, scope: "/titles/a/"), keys: ring)

    @Test func goodTokenIsGranted() {
        #expect(isGranted(check(token, path: "/titles/a/1/master.m3u8")))
        #expect(isGranted(check(token, path: "/titles/a/")))
    }

    @Test func expiredIsGoneAndNotYetValidIsForbidden() throws {
        #expect(check(token, path: "/titles/a/x", now: 1_800_000_100) == .refused(.expired))
        let later = try URLToken.mint(TokenClaims(keyID: "test1", expires: 1_900_000_000, notBefore: 1_850_000_000, scope: "/"), keys: ring)
        #expect(check(later, path: "/titles/a/x") == .refused(.notYetValid))
        #expect(isGranted(check(later, path: "/titles/a/x", now: 1_850_000_000)))
        #expect(TokenRefusal.expired.isExpiry && !TokenRefusal.notYetValid.isExpiry)
    }

    @Test func anotherTitleIsOutOfScope() {
        #expect(check(token, path: "/titles/b/1/master.m3u8") == .refused(.outOfScope))
        #expect(check(token, path: "/titles/ab/x") == .refused(.outOfScope))
        #expect(check(token, path: "/titles/") == .refused(.outOfScope))
        #expect(check(token, path: "/titles/a") == .refused(.outOfScope))
    }

    @Test func scopeWithoutTrailingSlashCoversItselfAndBelowOnly() throws {
        let file = try URLToken.mint(TokenClaims(keyID: "test1", expires: 1_900_000_000, scope: "/titles/a"), keys: ring)
        #expect(isGranted(check(file, path: "/titles/a")))
        #expect(isGranted(check(file, path: "/titles/a/x.m4s")))
        #expect(check(file, path: "/titles/ab") == .refused(.outOfScope))
    }

    @Test func unknownKeyAndForgedSignature() throws {
        let otherRing = try TokenKeyRing([("test3", Array(repeating: 7, count: 32))])
        let foreign = try URLToken.mint(TokenClaims(keyID: "test3", expires: 1_900_000_000, scope: "/"), keys: otherRing)
        #expect(check(foreign, path: "/titles/a/x") == .refused(.unknownKey))
        // Same key id, different secret: a forgery.
        let forgedRing = try TokenKeyRing([("test1", Array(repeating: 9, count: 32))])
        let forged = try URLToken.mint(TokenClaims(keyID: "test1", expires: 1_900_000_000, scope: "/"), keys: forgedRing)
        #expect(check(forged, path: "/titles/a/x") == .refused(.badSignature))
        // A forged token with expired claims is still refused as forged, not as expired.
        let forgedExpired = try URLToken.mint(TokenClaims(keyID: "test1", expires: 1_000, scope: "/"), keys: forgedRing)
        #expect(check(forgedExpired, path: "/titles/a/x") == .refused(.badSignature))
    }

    @Test func widenedScopeBreaksTheSignature() throws {
        // Re-encode the payload with a wider scope but keep the signature.
        let parts = token.split(separator: ".")
        let claims = String(decoding: Base64URL.decode(String(parts[1]))!, as: UTF8.self)
        let widened = claims.replacingOccurrences(of: "s=/titles/a/", with: "s=/")
        let tampered = "v1." + Base64URL.encode(Array(widened.utf8)) + "." + parts[2]
        #expect(check(tampered, path: "/titles/b/x") == .refused(.badSignature))
        let longer = claims.replacingOccurrences(of: "e=1800000100", with: "e=1900000100")
        #expect(check("v1." + Base64URL.encode(Array(longer.utf8)) + "." + parts[2], path: "/titles/a/x") == .refused(.badSignature))
    }

    @Test func everySingleCharacterChangeIsRefused() {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.%=+/".utf8)
        var bytes = Array(token.utf8)
        for i in 0..<bytes.count {
            let original = bytes[i]
            for c in alphabet where c != original {
                bytes[i] = c
                let result = check(String(decoding: bytes, as: UTF8.self), path: "/titles/a/x")
                #expect(!isGranted(result), "changing byte \(i) to \(Character(UnicodeScalar(c))) was accepted")
            }
            bytes[i] = original
        }
    }

    @Test func truncatedAndExtendedTokensAreRefused() {
        for length in 0..<token.utf8.count {
            #expect(!isGranted(check(String(token.prefix(length)), path: "/titles/a/x")))
        }
        #expect(!isGranted(check(token + "A", path: "/titles/a/x")))
        #expect(!isGranted(check(token + "=", path: "/titles/a/x")))
    }

    @Test func reencodedSpellingsAreRefused() {
        // Standard base64 with padding, percent-encoding, upper-case version tag.
        let standard = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "="
        #expect(check(standard, path: "/titles/a/x") == .refused(.malformed))
        #expect(check(token.replacingOccurrences(of: "v1.", with: "v1%2E"), path: "/titles/a/x") == .refused(.malformed))
        #expect(check("V" + token.dropFirst(), path: "/titles/a/x") == .refused(.malformed))
        let percentEncoded = token.utf8.map { "%" + String($0, radix: 16, uppercase: true) }.joined()
        #expect(check(percentEncoded, path: "/titles/a/x") == .refused(.malformed))
    }

    @Test func anotherClientAddressIsRefused() throws {
        let pinned = try URLToken.mint(
            TokenClaims(keyID: "test2", expires: 1_900_000_000, scope: "/titles/a/", client: CIDR("198.51.100.0/24")), keys: ring)
        #expect(isGranted(check(pinned, path: "/titles/a/x", client: IPAddress("198.51.100.200")!)))
        #expect(check(pinned, path: "/titles/a/x", client: IPAddress("198.51.101.1")!) == .refused(.wrongAddress))
        #expect(check(pinned, path: "/titles/a/x", client: IPAddress("2001:db8::1")!) == .refused(.wrongAddress))
        let single = try URLToken.mint(
            TokenClaims(keyID: "test2", expires: 1_900_000_000, scope: "/", client: CIDR("2001:db8::7")), keys: ring)
        #expect(isGranted(check(single, path: "/x", client: IPAddress("2001:db8::7")!)))
        #expect(check(single, path: "/x", client: IPAddress("2001:db8::8")!) == .refused(.wrongAddress))
    }

    @Test func signedClaimsThatBreakTheGrammarAreMalformed() throws {
        // A correctly signed token whose claims are out of order or carry unknown fields.
        for claims in [
            "e=1900000000&k=test1&s=/", "k=test1&e=1900000000&s=/&x=1", "k=test1&e=19e8&s=/", "k=test1&e=1900000000&s=/../",
            "k=test1&e=1900000000&s=/a//b", "k=test1&e=1900000000&s=titles", "k=test1&e=1900000000&s=/&sid=", "k=test1&e=1900000000&s=/&ip=1.2.3.4/33",
            "k=test1&e=1900000000&s=/&sid=a b", "k=&e=1900000000&s=/", "k=test1&e=1900000000", "",
        ] {
            let signed = "v1." + Base64URL.encode(Array(claims.utf8))
            let mac = ring.mac(keyID: "test1", Array(signed.utf8))!
            let result = check(signed + "." + Base64URL.encode(mac), path: "/x")
            #expect(result == .refused(.malformed) || result == .refused(.wrongAddress), "\(claims) gave \(result)")
        }
    }

    @Test func hostileBytesNeverCrashOrGrant() {
        var random = SeededGenerator(seed: 0x70CE)
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...200, using: &random)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            if Bool.random(using: &random) && bytes.count > 3 { bytes[0...2] = [0x76, 0x31, 0x2E] }
            let token = String(decoding: bytes, as: UTF8.self)
            #expect(!isGranted(check(token, path: "/titles/a/x")))
        }
    }
}

@Suite struct KeyRings {
    @Test func shortSecretsAndBadIDsAreRefusedWithTheReason() {
        #expect(throws: TokenKeyError.self) { try TokenKeyRing([("k", Array(repeating: 1, count: 31))]) }
        #expect(throws: TokenKeyError.self) { try TokenKeyRing([("bad id", Array(repeating: 1, count: 32))]) }
        #expect(throws: TokenKeyError.self) { try TokenKeyRing([("k", Array(repeating: 1, count: 32)), ("k", Array(repeating: 2, count: 32))]) }
        do {
            _ = try TokenKeyRing([("k", Array(repeating: 1, count: 10))])
        } catch {
            #expect(error.description.contains("at least 32"))
        }
    }

    @Test func rotationKeepsBothKeysValid() throws {
        let old = try TokenKeyRing([("2025", Array(repeating: 1, count: 32))])
        let both = try TokenKeyRing([("2025", Array(repeating: 1, count: 32)), ("2026", Array(repeating: 2, count: 32))])
        let minted = try URLToken.mint(TokenClaims(keyID: "2025", expires: 1_900_000_000, scope: "/"), keys: old)
        #expect(isGranted(check(minted, path: "/x", keys: both)))
        let retired = try TokenKeyRing([("2026", Array(repeating: 2, count: 32))])
        #expect(check(minted, path: "/x", keys: retired) == .refused(.unknownKey))
    }

    @Test func longSecretsAreHashedFirstAsHMACRequires() throws {
        // RFC 4231 test case 6: a 131-byte key.
        let key = [UInt8](repeating: 0xAA, count: 131)
        let keys = try TokenKeyRing([("rfc", key)])
        let mac = keys.mac(keyID: "rfc", Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))!
        #expect(mac.map { String(format2: $0) }.joined() == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func mintingRefusesBadClaims() {
        #expect(throws: TokenKeyError.self) { try URLToken.mint(TokenClaims(keyID: "test1", expires: 1, scope: "titles"), keys: ring) }
        #expect(throws: TokenKeyError.self) { try URLToken.mint(TokenClaims(keyID: "test1", expires: 1, scope: "/a/../b"), keys: ring) }
        #expect(throws: TokenKeyError.self) { try URLToken.mint(TokenClaims(keyID: "nope", expires: 1, scope: "/"), keys: ring) }
        #expect(throws: TokenKeyError.self) {
            try URLToken.mint(TokenClaims(keyID: "test1", expires: 10, scope: "/", session: "has space"), keys: ring)
        }
    }

    @Test func signedURLs() {
        #expect(URLToken.signedURL(base: "http://h:1/", path: "/titles/a/master.m3u8", token: "T", placement: .path) == "http://h:1/t/T/titles/a/master.m3u8")
        #expect(URLToken.signedURL(base: "http://h:1", path: "/titles/a/master.m3u8", token: "T", placement: .query) == "http://h:1/titles/a/master.m3u8?token=T")
        #expect(URLToken.signedURL(base: "http://h:1", path: "/m.m3u8?x=1", token: "T", placement: .query) == "http://h:1/m.m3u8?x=1&token=T")
    }
}

extension String {
    init(format2 byte: UInt8) {
        let hex = String(byte, radix: 16)
        self = hex.count == 1 ? "0" + hex : hex
    }
}

@Suite struct Base64URLProperties {
    @Test func roundTripsEveryLengthAndRefusesOtherSpellings() {
        var random = SeededGenerator(seed: 0xB64)
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(text) == bytes || (length == 0 && Base64URL.decode(text) == []))
            // A last character with non-zero unused bits decodes to the same bytes elsewhere: refused.
            if length % 3 != 0, let last = text.last, let index = Base64URL.alphabet.firstIndex(of: UInt8(ascii: last.unicodeScalars.first!)) {
                let twin = Base64URL.alphabet[index ^ 1]
                #expect(Base64URL.decode(String(text.dropLast()) + String(UnicodeScalar(twin))) == nil)
            }
        }
        #expect(Base64URL.decode("A") == nil)
        #expect(Base64URL.decode("AA==") == nil)
        #expect(Base64URL.decode("a+b/") == nil)
    }
}
