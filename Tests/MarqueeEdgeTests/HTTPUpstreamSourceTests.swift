import Foundation
import MarqueeGateway
import MarqueeTokens
import Testing

@testable import MarqueeEdge

/// What the edge's source decides for the loops that fetch: the request each upstream gets, and
/// what each answer means. The fetches themselves run through a real edge (`EdgeUpstreamTests`).
@Suite("Edge upstream source: requests and answers")
struct HTTPUpstreamSourceTests {
    static let key = Array("an edge key of at least thirty-two bytes!".utf8)

    static func source(signed: Bool = true) throws -> HTTPUpstreamSource {
        HTTPUpstreamSource(
            upstreams: [try ServiceUpstream(name: "upstream", url: "http://127.0.0.1:8001"), try ServiceUpstream(name: "upstream", url: "http://[::1]:8002")],
            signer: signed ? (try EdgeSignature(secrets: [key]), "edge-test.eu") : nil, edgeID: "edge-test.eu", downMilliseconds: 5000)
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test("the GET names the key percent-encoded and the upstream's Host, carries no token, and a signature good for its own path only")
    func signedRequest() throws {
        let source = try Self.source()
        let head = Self.text(source.request(for: "titles/a b/v1/seg-1.m4s", upstream: 1, revalidating: nil))
        #expect(head.hasPrefix("GET /titles/a%20b/v1/seg-1.m4s HTTP/1.1\r\n"))
        #expect(head.contains("\r\nHost: [::1]:8002\r\n") && head.hasSuffix("\r\n\r\n"))
        #expect(head.contains("\r\nVia: 1.1 edge-test.eu (marquee)\r\n"))
        #expect(!head.lowercased().contains("token") && !head.contains("If-None-Match"))
        let value = try #require(head.split(separator: "\r\n").first { $0.hasPrefix("Marquee-Edge: ") }?.dropFirst("Marquee-Edge: ".count))
        let verifier = try EdgeSignature(secrets: [Self.key])
        let now = Int64(Date().timeIntervalSince1970)
        func verdict(_ path: String) -> EdgeSignature.Check {
            Array(value.utf8).withUnsafeBytes { v in Array(path.utf8).withUnsafeBytes { verifier.verify(v, absolutePath: $0, nowSeconds: now) } }
        }
        #expect(verdict("/titles/a b/v1/seg-1.m4s") == .valid)
        #expect(verdict("/titles/a b/v1/seg-2.m4s") == .badSignature)
        #expect(!Self.text(try Self.source(signed: false).request(for: "k", upstream: 0, revalidating: nil)).contains("Marquee-Edge"))
    }

    @Test("a refresh of a copy with validators is conditional")
    func conditional() throws {
        let copy = ObjectFreshness(freshUntil: 0, staleWhileRevalidateUntil: 0, staleIfErrorUntil: 0, etag: "\"v1\"", lastModified: 1_796_119_200)
        let head = Self.text(try Self.source().request(for: "k", upstream: 0, revalidating: copy))
        #expect(head.contains("\r\nIf-None-Match: \"v1\"\r\n"))
        #expect(head.contains("\r\nIf-Modified-Since: Tue, 01 Dec 2026 10:00:00 GMT\r\n"))
    }

    func answer(_ head: String, _ status: Int, revalidating: ObjectFreshness? = nil) throws -> UpstreamAnswer {
        try Array(head.utf8).withUnsafeBytes { try Self.source().answer(head: $0, status: status, revalidating: revalidating) }
    }

    @Test("a 200 is the body, with the upstream's Last-Modified (else now) and its freshness; a 304 renews the copy and keeps its validators")
    func bodies() throws {
        let before = Int64(Date().timeIntervalSince1970)
        guard case .body(let modified, let freshness) = try answer("HTTP/1.1 200 OK\r\nLast-Modified: Tue, 01 Dec 2026 10:00:00 GMT\r\nCache-Control: max-age=60\r\nETag: \"v2\"\r\n\r\n", 200) else {
            Issue.record("a 200 was not a body")
            return
        }
        #expect(modified == 1_796_119_200 && freshness.etag == "\"v2\"")
        #expect(freshness.freshUntil >= before * 1000 + 59_000)
        guard case .body(let now, _) = try answer("HTTP/1.1 200 OK\r\n\r\n", 200) else { return }
        #expect(now >= before && now <= before + 5)

        let copy = ObjectFreshness(freshUntil: 0, staleWhileRevalidateUntil: 0, staleIfErrorUntil: 0, etag: "\"v1\"", lastModified: 1_796_119_200)
        guard case .notModified(let renewed) = try answer("HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=30\r\n\r\n", 304, revalidating: copy) else {
            Issue.record("a 304 was not a renewal")
            return
        }
        #expect(renewed.etag == "\"v1\"" && renewed.lastModified == 1_796_119_200, "a 304 without validators keeps the copy's")
        #expect(renewed.freshUntil >= before * 1000 + 29_000)
    }

    @Test("404 and 410: no such object; other 4xx and redirects: refused (no other upstream is asked); 5xx: unavailable (the next is)")
    func statuses() throws {
        for status in [404, 410] { #expect(try answer("HTTP/1.1 \(status) X\r\n\r\n", status) == .notFound) }
        for status in [400, 403, 451, 301, 302] { #expect(try answer("HTTP/1.1 \(status) X\r\n\r\n", status) == .refused("the upstream answered \(status)")) }
        for status in [500, 502, 503, 504] { #expect(try answer("HTTP/1.1 \(status) X\r\n\r\n", status) == .unavailable("answered \(status)")) }
    }
}
