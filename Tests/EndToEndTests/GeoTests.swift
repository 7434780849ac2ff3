import Foundation
import MarqueeTestSupport
import Testing

/// Geo rules at the gateway with the real GeoLite2 City database (PyPI maxminddb-geolite2) and
/// with databases written by mmdb-writer (`PythonEnvironment`).
enum GeoFixtures {
    static func python(_ script: String) throws -> String { try PythonEnvironment.run(script) }

    static func geoLite2City() throws -> String { try PythonEnvironment.geoLite2City() }

    /// A small IPv6 (IPv4-compatible) database: 192.0.2.0/24 FR, 198.51.100.0/24 DE; and an
    /// Anonymous IP database marking 198.51.100.128/25 as a VPN.
    static func writtenDatabases() throws -> (countries: String, anonymous: String) {
        let folder = try Scratch.newDirectory("mmdb")
        let countries = folder.appendingPathComponent("countries.mmdb").path
        let anonymous = folder.appendingPathComponent("anonymous.mmdb").path
        _ = try python(
            """
            from mmdb_writer import MMDBWriter
            from netaddr import IPSet
            w = MMDBWriter(ip_version=6, database_type="Marquee-Test-Country", ipv4_compatible=True)
            w.insert_network(IPSet(["192.0.2.0/24"]), {"country": {"iso_code": "FR"}})
            w.insert_network(IPSet(["198.51.100.0/24"]), {"country": {"iso_code": "DE"}})
            w.to_db_file("\(countries)")
            a = MMDBWriter(ip_version=6, database_type="GeoIP2-Anonymous-IP", ipv4_compatible=True)
            a.insert_network(IPSet(["198.51.100.128/25"]), {"is_anonymous": True, "is_anonymous_vpn": True})
            a.to_db_file("\(anonymous)")
            """)
        return (countries, anonymous)
    }
}

@Suite("Geo rules")
struct GeoTests {
    func status(_ server: ServerProcess, _ path: String, from address: String? = nil) throws -> CurlResponse {
        try Curl.fetch(server.url(path), address.map { ["-H", "X-Forwarded-For: \($0)"] } ?? [])
    }

    @Test("Real GeoLite2: an allow-listed title serves US and refuses GB with 451 behind a trusted proxy")
    func geoLite2BehindTrustedProxy() throws {
        let fixtures = try MediaFixtures.shared()
        let config = try configFile(
            """
            client:
              trusted_proxies: ["127.0.0.1"]
            geo:
              database: \(try GeoFixtures.geoLite2City())
              rules:
                - "/titles/demo/ allow=US,CA"
            """)
        let server = try ServerProcess(root: fixtures.root, configFile: config)
        defer { server.stop() }
        #expect(try status(server, MediaFixtures.hlsSegment, from: "8.8.8.8").status == 200)
        let refused = try status(server, MediaFixtures.hlsSegment, from: "81.2.69.142")
        #expect(refused.status == 451)
        #expect(refused.bodyText.contains("(GB)"), "451 body: \(refused.bodyText)")
        // The rightmost untrusted address counts: a client cannot pick its country by
        // prepending an address the proxy did not see.
        #expect(try status(server, MediaFixtures.hlsSegment, from: "8.8.8.8, 81.2.69.142").status == 451)
        #expect(try status(server, MediaFixtures.hlsSegment, from: "81.2.69.142, 8.8.8.8").status == 200)
        // Forwarded (RFC 7239) works too.
        let forwarded = try Curl.fetch(server.url(MediaFixtures.hlsSegment), ["-H", "Forwarded: for=81.2.69.142;proto=https"])
        #expect(forwarded.status == 451)
        // Paths no rule covers are served without a lookup.
        #expect(try status(server, MediaFixtures.small, from: "81.2.69.142").status == 200)
        #expect(try server.metric(#"marquee_policy_decisions_total{check="geo",outcome="deny",reason="country_not_allowed"}"#) == 3)
    }

    @Test("From an untrusted peer, forwarding headers are ignored")
    func untrustedPeer() throws {
        let fixtures = try MediaFixtures.shared()
        let config = try configFile(
            """
            client:
              trusted_proxies: ["10.0.0.0/8"]
            geo:
              database: \(try GeoFixtures.geoLite2City())
              unknown_country: deny
              rules:
                - "/titles/demo/ deny=GB"
            """)
        let server = try ServerProcess(root: fixtures.root, configFile: config)
        defer { server.stop() }
        // The peer is 127.0.0.1 (not a trusted proxy, not in the database): the claimed US
        // address is ignored and the unknown country is refused.
        let response = try status(server, MediaFixtures.hlsSegment, from: "8.8.8.8")
        #expect(response.status == 451)
        #expect(try server.metric(#"marquee_policy_decisions_total{check="geo",outcome="deny",reason="unknown_country"}"#) == 1)
    }

    @Test("Written databases: deny-list, anonymous networks, overrides, and a reload when the file changes")
    func writtenDatabases() throws {
        let fixtures = try MediaFixtures.shared()
        let (countries, anonymous) = try GeoFixtures.writtenDatabases()
        let live = try Scratch.newDirectory("geo").appendingPathComponent("live.mmdb")
        try FileManager.default.copyItem(atPath: countries, toPath: live.path)
        let config = try configFile(
            """
            client:
              trusted_proxies: ["127.0.0.1"]
            geo:
              database: \(live.path)
              anonymous_database: \(anonymous)
              rules:
                - "/titles/demo/ deny=FR deny_anonymous"
              overrides:
                - "192.0.2.77 allow"
                - "203.0.113.0/24 country=FR"
            """)
        let server = try ServerProcess(root: fixtures.root, configFile: config)
        defer { server.stop() }
        let segment = MediaFixtures.hlsSegment
        #expect(try status(server, segment, from: "192.0.2.1").status == 451)  // FR
        #expect(try status(server, segment, from: "198.51.100.5").status == 200)  // DE
        let vpn = try status(server, segment, from: "198.51.100.200")  // DE, but a VPN
        #expect(vpn.status == 451)
        #expect(vpn.bodyText.lowercased().contains("anonym"), "\(vpn.bodyText)")
        #expect(try status(server, segment, from: "192.0.2.77").status == 200)  // override: allow
        #expect(try status(server, segment, from: "203.0.113.9").status == 451)  // override: treated as FR

        // Replace the database (by rename): FR becomes DE, and the gateway follows without a restart.
        let replacement = live.deletingLastPathComponent().appendingPathComponent("next.mmdb").path
        _ = try GeoFixtures.python(
            """
            from mmdb_writer import MMDBWriter
            from netaddr import IPSet
            w = MMDBWriter(ip_version=6, database_type="Marquee-Test-Country", ipv4_compatible=True)
            w.insert_network(IPSet(["192.0.2.0/24"]), {"country": {"iso_code": "DE"}})
            w.to_db_file("\(replacement)")
            """)
        #expect(rename(replacement, live.path) == 0)
        #expect(try waitUntil(timeout: .seconds(5)) { try status(server, segment, from: "192.0.2.1").status == 200 })
        // The reloader logs after it swapped the database in, so the log line may trail the new answers.
        #expect(waitUntil(timeout: .seconds(10)) { server.stderr.text.contains("geo") }, "the reload is logged: \(server.stderr.text)")
    }
}
