import MarqueeBus
import MarqueeHTTP
import Testing

@testable import MarqueeGateway

@Suite("Delivery records: what the request path extracts")
struct DeliveryRecordingTests {
    func split(_ path: String) -> [String?]? {
        var path = path
        return path.withUTF8 { bytes in
            guard let parts = MediaPath.split(UnsafeRawBufferPointer(bytes)) else { return nil }
            func text(_ b: UnsafeRawBufferPointer?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }
            return [text(parts.title), text(parts.version), text(parts.object)]
        }
    }

    @Test("Media paths split into title, version and object path; other paths are not media")
    func splitsPaths() {
        #expect(split("titles/t1/v2/video/720p/seg_00042.m4s") == ["t1", "v2", "video/720p/seg_00042.m4s"])
        #expect(split("titles/t1/v2/") == ["t1", "v2", ""])
        #expect(split("titles/t1/v2") == ["t1", "v2", ""])
        #expect(split("titles/t1") == ["t1", nil, ""])
        #expect(split("titles/t1//x") == ["t1", nil, "x"])
        #expect(split("titles/") == nil)
        #expect(split("titles//x") == nil)
        #expect(split("player/index.html") == nil)
        #expect(split("titlesx/a/b") == nil)
    }

    @Test("Client classes from addresses, v4 and v6")
    func classifiesClients() {
        func cls(_ text: String) -> DeliveryRecord.ClientClass { MediaPath.clientClass(IPAddress(text)!) }
        #expect(MediaPath.clientClass(IPAddress(high: 0, low: 0)) == .unknown)
        #expect(cls("127.0.0.1") == .loopback)
        #expect(cls("127.8.9.10") == .loopback)
        #expect(cls("::1") == .loopback)
        for address in ["10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.3.4", "100.64.0.1", "fd00::1", "fc12::9", "fe80::1"] {
            #expect(cls(address) == .privateNetwork, "\(address)")
        }
        for address in ["8.8.8.8", "172.32.0.1", "192.169.0.1", "100.128.0.1", "203.0.113.9"] {
            #expect(cls(address) == .publicIPv4, "\(address)")
        }
        for address in ["2001:db8::1", "2a00:1450::1", "fec0::1"] {
            #expect(cls(address) == .publicIPv6, "\(address)")
        }
    }

    func cmcd(query: String, headers: [String] = ["", "", "", ""]) -> String {
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: MediaPath.cmcdScratchBytes, alignment: 16)
        defer { scratch.deallocate() }
        let q = Array(query.utf8)
        let h = headers.map { Array($0.utf8) }
        let n = q.withUnsafeBytes { qb in
            h[0].withUnsafeBytes { a in h[1].withUnsafeBytes { b in h[2].withUnsafeBytes { c in h[3].withUnsafeBytes { d in
                MediaPath.cmcd(query: qb, headers: (a, b, c, d), into: scratch)
            } } } }
        }
        return String(decoding: UnsafeRawBufferPointer(start: scratch, count: n), as: UTF8.self)
    }

    @Test("CMCD comes from the query parameter (percent-decoded) or the four headers joined with commas")
    func extractsCMCD() {
        #expect(cmcd(query: "token=abc&CMCD=br%3D3200%2Cbl%3D21300%2Csid%3D%226e2f%22") == "br=3200,bl=21300,sid=\"6e2f\"")
        #expect(cmcd(query: "CMCD=ot%3Dv&x=1", headers: ["bl=1", "", "", ""]) == "ot=v", "the query wins")
        #expect(cmcd(query: "x=1", headers: ["bl=21300", "br=3200,d=4004", "", "sid=\"a\""]) == "bl=21300,br=3200,d=4004,sid=\"a\"")
        #expect(cmcd(query: "") == "")
        #expect(cmcd(query: "cmcd=x") == "", "the parameter name is case-sensitive (CTA-5004)")
        let long = cmcd(query: "CMCD=" + String(repeating: "a", count: 600))
        #expect(long.utf8.count == DeliveryRecordLayout.Text.cmcd.capacity + 1, "one byte past the room, so the record sees the cut")
    }

    @Test("Body bytes are what the socket took past the head, never negative")
    func bodyBytes() {
        #expect(bodyBytesSent(sent: 0, headBytes: 200) == 0)
        #expect(bodyBytesSent(sent: 150, headBytes: 200) == 0)
        #expect(bodyBytesSent(sent: 1200, headBytes: 200) == 1000)
    }

    @Test("A started record completes with what went out, keeping the rest")
    func completesRecords() throws {
        let slot = UnsafeMutableRawPointer.allocate(byteCount: DeliveryRecordLayout.size, alignment: 64)
        defer { slot.deallocate() }
        let started = DeliveryRecord(
            endMicroseconds: 0, durationMicroseconds: 0, status: 206, bytesSent: 0, objectSize: 5000, range: 0...99, cache: .hit,
            country: "FR", clientClass: .publicIPv4, sessionID: "s", titleID: "t", packageVersion: "v", objectPath: "o", cmcd: "br=1")
        DeliveryRecordLayout.encode(started, into: slot)
        DeliveryRecordLayout.complete(slot, endMicroseconds: 1_700_000_000_000_000, durationMicroseconds: 1234, bytesSent: 60, aborted: true)
        var expected = started
        expected.endMicroseconds = 1_700_000_000_000_000
        expected.durationMicroseconds = 1234
        expected.bytesSent = 60
        expected.aborted = true
        #expect(try DeliveryRecordLayout.decode(UnsafeRawBufferPointer(start: slot, count: DeliveryRecordLayout.size)) == expected)
        DeliveryRecordLayout.complete(slot, endMicroseconds: 1, durationMicroseconds: 1, bytesSent: 100, aborted: false)
        #expect(!(try DeliveryRecordLayout.decode(UnsafeRawBufferPointer(start: slot, count: DeliveryRecordLayout.size))).aborted)
    }
}
