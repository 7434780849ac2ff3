import MarqueeHTTP
import MarqueeTestSupport
import Testing
@testable import MarqueePolicy

@Suite("Geo trusted proxies")
struct GeoTrustedProxiesTests {
    static let proxies = TrustedProxies(["10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.1"].map { CIDR($0)! })
    static let trustedPeer = IPAddress("10.0.0.1")!
    static let untrustedPeer = IPAddress("203.0.113.9")!

    static func client(
        _ forwardedFor: String = "", forwarded: String = "", peer: IPAddress = trustedPeer, proxies: TrustedProxies = proxies
    ) -> String {
        proxies.clientAddress(peer: peer, forwardedFor: forwardedFor, forwarded: forwarded).description
    }

    @Test func untrustedPeerIsTheClientWhateverTheHeadersSay() {
        #expect(Self.client("198.51.100.1", forwarded: "for=198.51.100.2", peer: Self.untrustedPeer) == "203.0.113.9")
        #expect(Self.client("198.51.100.1", proxies: TrustedProxies([])) == "10.0.0.1")
    }

    @Test func trustedPeerWithoutHeadersIsTheClient() {
        #expect(Self.client() == "10.0.0.1")
        #expect(Self.client(" , ,") == "10.0.0.1")
    }

    @Test func forwardedForIsReadFromTheRightSkippingTrustedHops() {
        #expect(Self.client("198.51.100.1") == "198.51.100.1")
        #expect(Self.client("198.51.100.1, 10.1.1.1") == "198.51.100.1")
        #expect(Self.client("6.6.6.6, 198.51.100.1, 10.1.1.1, 192.0.2.1") == "198.51.100.1")
        // Header lines joined by the parser, with odd spacing and empty elements.
        #expect(Self.client("6.6.6.6,198.51.100.1 ,, \t10.1.1.1\t") == "198.51.100.1")
        #expect(Self.client("1.1.1.1,") == "1.1.1.1")
    }

    @Test func allTrustedHopsYieldTheLeftmost() {
        #expect(Self.client("10.9.9.9, 10.1.1.1") == "10.9.9.9")
        #expect(Self.client("192.0.2.1") == "192.0.2.1")
    }

    @Test func malformedEntriesStopAtTheLastTrustedHop() {
        #expect(Self.client("6.6.6.6, unknown") == "10.0.0.1")
        #expect(Self.client("6.6.6.6, unknown, 10.1.1.1") == "10.1.1.1")
        #expect(Self.client("6.6.6.6, 10.1.1.1, garbage!, 10.2.2.2") == "10.2.2.2")
        #expect(Self.client("6.6.6.6, 1.2.3.4.5") == "10.0.0.1")
        #expect(Self.client("6.6.6.6, _hidden") == "10.0.0.1")
        #expect(Self.client("6.6.6.6, 198.51.100.1 extra") == "10.0.0.1")
        #expect(Self.client("6.6.6.6, [198.51.100.1]") == "10.0.0.1")
        #expect(Self.client("6.6.6.6, 198.51.100.1:99999") == "10.0.0.1")
        #expect(Self.client("6.6.6.6, 2001:db8::1%eth0") == "10.0.0.1")
    }

    @Test func forwardedForWithIPv6AndPorts() {
        #expect(Self.client("2001:db8::1") == "2001:db8::1")
        #expect(Self.client("2001:db8::1, 2001:db8:ffff::7") == "2001:db8::1")
        #expect(Self.client("[2001:db8::1]:4711, 10.0.0.3") == "2001:db8::1")
        #expect(Self.client("[2001:db8::2]") == "2001:db8::2")
        #expect(Self.client("198.51.100.1:8080") == "198.51.100.1")
        #expect(Self.client("::ffff:198.51.100.1") == "198.51.100.1")
        #expect(Self.client("2001:db8::3", peer: IPAddress("2001:db8:ffff::1")!) == "2001:db8::3")
        #expect(Self.client("2001:db8:ffff::9", peer: IPAddress("2001:db8:ffff::1")!) == "2001:db8:ffff::9")
    }

    @Test func forwardedElementsAreReadFromTheRight() {
        #expect(Self.client(forwarded: "for=192.0.2.60;proto=http;by=203.0.113.43") == "192.0.2.60")
        #expect(Self.client(forwarded: "for=198.51.100.17, for=10.3.3.3") == "198.51.100.17")
        #expect(Self.client(forwarded: "for=6.6.6.6, for=198.51.100.17;by=10.0.0.1, for=10.3.3.3") == "198.51.100.17")
        #expect(Self.client(forwarded: "FOR=198.51.100.17") == "198.51.100.17")
        #expect(Self.client(forwarded: "proto=https ; For=198.51.100.17 ; host=example.com") == "198.51.100.17")
        #expect(Self.client(forwarded: "for=10.5.5.5, for=10.3.3.3") == "10.5.5.5")
    }

    @Test func forwardedQuotedFormsWithBracketsAndPorts() {
        #expect(Self.client(forwarded: #"for="[2001:db8:cafe::17]:4711""#) == "2001:db8:cafe::17")
        #expect(Self.client(forwarded: #"for="[2001:db8:cafe::17]""#) == "2001:db8:cafe::17")
        #expect(Self.client(forwarded: #"for="192.0.2.60:8080""#) == "192.0.2.60")
        #expect(Self.client(forwarded: #"for="198.51.100.9""#) == "198.51.100.9")
        #expect(Self.client(forwarded: #"for="198.51.100.9:_proxy-port""#) == "198.51.100.9")
        // A comma inside a quoted value of another parameter does not split the element.
        #expect(Self.client(forwarded: #"for=198.51.100.9;host="a,b", for=10.3.3.3"#) == "198.51.100.9")
    }

    @Test func malformedForwardedElementsStopAtTheLastTrustedHop() {
        #expect(Self.client(forwarded: "for=6.6.6.6, for=unknown") == "10.0.0.1")
        #expect(Self.client(forwarded: "for=6.6.6.6, for=_hidden, for=10.3.3.3") == "10.3.3.3")
        #expect(Self.client(forwarded: "for=6.6.6.6, proto=https") == "10.0.0.1")
        #expect(Self.client(forwarded: "for=6.6.6.6, for=1.1.1.1;for=2.2.2.2") == "10.0.0.1")
        #expect(Self.client(forwarded: #"for=6.6.6.6, for="198.51.100.1"#) == "10.0.0.1")
        #expect(Self.client(forwarded: #"for=6.6.6.6, for="198.51.100\.1""#) == "10.0.0.1")
        #expect(Self.client(forwarded: "for=6.6.6.6, =198.51.100.1") == "10.0.0.1")
        #expect(Self.client(forwarded: "for=6.6.6.6, for=") == "10.0.0.1")
    }

    @Test func proxyAppendedElementSurvivesHostileClientPrefix() {
        // The client sent an unclosed quote; the trusted proxy appended the real address.
        #expect(Self.client(forwarded: #"for="6.6.6.6, for=198.51.100.1"#) == "198.51.100.1")
        #expect(Self.client(forwarded: #"for="\", for=198.51.100.1"#) == "198.51.100.1")
        #expect(Self.client(#""6.6.6.6, 198.51.100.1"#) == "198.51.100.1")
    }

    @Test func headerSourceSelection() {
        let xff = TrustedProxies(Self.proxies.blocks, source: .xForwardedFor)
        let fwd = TrustedProxies(Self.proxies.blocks, source: .forwarded)
        #expect(Self.client("198.51.100.1", forwarded: "for=198.51.100.2") == "198.51.100.1")
        #expect(Self.client(" ", forwarded: "for=198.51.100.2") == "198.51.100.2")
        #expect(Self.client("", forwarded: "for=198.51.100.2", proxies: xff) == "10.0.0.1")
        #expect(Self.client("198.51.100.1", forwarded: "for=198.51.100.2", proxies: fwd) == "198.51.100.2")
    }

    @Test func hostileBytesNeverCrashAndNeverOverrideAnUntrustedPeer() {
        let seed = UInt64.random(in: 0...UInt64.max)
        var random = SeededGenerator(seed: seed)
        let alphabet = Array(#"0123456789abcdefABCDEF.:[]_,;=" \for\"unknown"#.utf8) + [0, 0xFF, 0x09, 0x80]
        let appended = IPAddress("198.51.100.200")!
        for round in 0..<20_000 {
            let length = Int(random.next() % 120)
            var hostile = [UInt8]()
            for _ in 0..<length {
                hostile.append(random.next() & 1 == 0 ? alphabet[Int(random.next() % UInt64(alphabet.count))] : UInt8(truncatingIfNeeded: random.next()))
            }
            let other = random.bytes(Int(random.next() % 40))
            let untrusted = IPAddress(ipv4: 0xC633_6400 | UInt32(random.next() & 0xFF))  // 198.51.100.x
            hostile.withUnsafeBytes { header in
                other.withUnsafeBytes { second in
                    let a = Self.proxies.clientAddress(peer: untrusted, forwardedFor: header, forwarded: second)
                    let b = Self.proxies.clientAddress(peer: untrusted, forwardedFor: second, forwarded: header)
                    #expect(a == untrusted && b == untrusted, "seed \(seed), round \(round)")
                    // A trusted peer: no crash, and the answer is never something unparseable.
                    _ = Self.proxies.clientAddress(peer: Self.trustedPeer, forwardedFor: header, forwarded: second)
                    _ = Self.proxies.clientAddress(peer: Self.trustedPeer, forwardedFor: UnsafeRawBufferPointer(start: nil, count: 0), forwarded: header)
                }
            }
            // Whatever the client wrote, the address a trusted proxy appended wins.
            let xff = hostile + Array(", \(appended)".utf8)
            let fwd = hostile + Array(", for=\(appended)".utf8)
            let fromXFF = xff.withUnsafeBytes { Self.proxies.clientAddress(peer: Self.trustedPeer, forwardedFor: $0, forwarded: UnsafeRawBufferPointer(start: nil, count: 0)) }
            let fromForwarded = fwd.withUnsafeBytes { Self.proxies.clientAddress(peer: Self.trustedPeer, forwardedFor: UnsafeRawBufferPointer(start: nil, count: 0), forwarded: $0) }
            #expect(fromXFF == appended, "seed \(seed), round \(round)")
            #expect(fromForwarded == appended, "seed \(seed), round \(round)")
            if fromXFF != appended || fromForwarded != appended { break }
        }
    }
}
