import MarqueeTestSupport
import Testing

@testable import MarqueeAnalytics

@Suite("Analytics: CMCD from delivery records")
struct CMCDTests {
    @Test("The keys analytics reads, as players send them")
    func keys() {
        let cmcd = CMCD("bl=21300,br=3200,bs,d=4004,mtp=25400,ot=v,rtp=15000,sid=\"6e2fb550\",su,tb=6000")
        #expect(cmcd?.bufferLengthMilliseconds == 21_300)
        #expect(cmcd?.bitrateKbps == 3_200)
        #expect(cmcd?.bufferStarvation == true)
        #expect(cmcd?.startup == true)
        #expect(cmcd?.objectType == "v")
        #expect(CMCD("bs=?0,bl=0")?.bufferStarvation == false)
        #expect(CMCD("") == nil)
    }

    @Test("Keys of the wrong type are ignored; text that is not a dictionary is refused")
    func wrongTypes() {
        let cmcd = CMCD("bl=\"lots\",bs=1,br=-5,ot=\"v\"")
        #expect(cmcd?.bufferLengthMilliseconds == nil)
        #expect(cmcd?.bufferStarvation == false)
        #expect(cmcd?.bitrateKbps == nil)
        #expect(cmcd?.objectType == nil)
        for text in ["bl=", "=1", "bl=1,,br=2", "bl=(1", "\u{0}", "bl=1;", "💥"] {
            #expect(CMCD(text) == nil, "\(text.debugDescription)")
        }
    }

    @Test("Hostile CMCD text never crashes the parser")
    func hostile() {
        var generator = SeededGenerator(seed: 5_004)
        let pieces = ["bl", "bs", "su", "br", "ot", "=", ",", ";", "?1", "?0", "\"", "(", ")", " ", "1", "-9999999999999999999", "v", "\\", "*", ":", "%"]
        for _ in 0..<5_000 {
            var text = ""
            for _ in 0..<Int.random(in: 0...20, using: &generator) { text += pieces.randomElement(using: &generator)! }
            if Bool.random(using: &generator) { text = String(decoding: generator.bytes(Int.random(in: 0...64, using: &generator)), as: UTF8.self) }
            _ = CMCD(text)
        }
    }
}
