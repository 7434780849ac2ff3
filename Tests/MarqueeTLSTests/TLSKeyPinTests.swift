import MarqueeTLS
import MarqueeTestSupport
import Testing

/// `edge.upstream_pins` as operators write them (curl's `--pinnedpubkey sha256//...`).
@Suite("Public-key pins")
struct TLSKeyPinTests {
    @Test("sha256// and the base64 of 32 bytes is a pin; anything else is refused")
    func parsing() {
        let pin = TLSKeyPin("sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        #expect(pin?.sha256.count == 32)
        #expect(pin?.sha256.prefix(4) == [0xE3, 0xB0, 0xC4, 0x42], "the SHA-256 of nothing starts e3b0c442")
        for bad in [
            "", "sha256//", "sha256//abc", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            "sha1//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF==",
            "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=AAAA", "sha256//47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            "sha256//====",
        ] {
            #expect(TLSKeyPin(bad) == nil, "accepted \(bad.debugDescription)")
        }
    }

    @Test("Random text never crashes the parser and is accepted only in the exact form")
    func hostileText() {
        var random = SeededGenerator(seed: 0x9E11)
        let alphabet = Array("ABCabc019+/=-_/sha256:// \u{0}é".utf8)
        for _ in 0..<20_000 {
            let length = Int(random.next() % 70)
            let bytes = (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            let text = (random.next() % 2 == 0 ? "sha256//" : "") + String(decoding: bytes, as: UTF8.self)
            if let pin = TLSKeyPin(text) {
                #expect(pin.sha256.count == 32)
                #expect(text.hasPrefix("sha256//") && text.utf8.count == 52, "accepted \(text.debugDescription)")
            }
        }
    }
}
