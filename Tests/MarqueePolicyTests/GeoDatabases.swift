import Foundation
import MarqueeTestSupport
import Testing

/// Real and hand-made MaxMind databases for the geo tests. Both come from the Python environment
/// `scripts/install-deps test` creates in `.build/python`: the GeoLite2 City database shipped by
/// `maxminddb-geolite2`, and small databases written on the spot with `mmdb-writer`.
enum GeoDatabases {
    /// The GeoLite2 City database inside the `maxminddb-geolite2` package.
    static func geoLite2City() throws -> String { try PythonEnvironment.geoLite2City() }

    /// One network entry: the blocks and the record stored for them.
    struct Network {
        var blocks: [String]
        var record: [String: any Sendable]
    }

    /// Writes a database with `mmdb-writer`. IPv6 databases are written IPv4-compatible, so
    /// IPv4 blocks land in `::/96` where libmaxminddb looks for IPv4 addresses.
    static func write(
        to path: String, ipVersion: Int = 6, databaseType: String = "Marquee-Test-Country", networks: [Network]
    ) throws {
        let spec: [String: Any] = [
            "path": path,
            "ip_version": ipVersion,
            "database_type": databaseType,
            "networks": networks.map { ["blocks": $0.blocks, "record": $0.record] as [String: Any] },
        ]
        let script = """
            import json, sys
            from mmdb_writer import MMDBWriter
            from netaddr import IPSet
            spec = json.load(sys.stdin)
            writer = MMDBWriter(ip_version=spec["ip_version"], database_type=spec["database_type"],
                                ipv4_compatible=spec["ip_version"] == 6)
            for network in spec["networks"]:
                writer.insert_network(IPSet(network["blocks"]), network["record"])
            writer.to_db_file(spec["path"])
            """
        try PythonEnvironment.run(script, input: try JSONSerialization.data(withJSONObject: spec))
    }

    /// A country record as GeoIP2 Country/City databases shape it.
    static func country(_ code: String, registered: String? = nil) -> [String: any Sendable] {
        var record: [String: any Sendable] = ["country": ["iso_code": code]]
        if let registered { record["registered_country"] = ["iso_code": registered] }
        return record
    }

    /// A small IPv6 (IPv4-compatible) country database:
    /// 192.0.2.0/24 FR, 198.51.100.0/24 DE, 203.0.113.0/24 only a registered country (JP),
    /// 2001:db8:1::/48 US, 2001:db8:2::/48 GB, 100.64.0.0/10 traits.is_anonymous_proxy (NL).
    static func writeCountries(to path: String, databaseType: String = "Marquee-Test-Country") throws {
        try write(
            to: path, databaseType: databaseType,
            networks: [
                Network(blocks: ["192.0.2.0/24"], record: country("FR")),
                Network(blocks: ["198.51.100.0/24"], record: country("DE")),
                Network(blocks: ["203.0.113.0/24"], record: ["registered_country": ["iso_code": "JP"]]),
                Network(blocks: ["2001:db8:1::/48"], record: country("US")),
                Network(blocks: ["2001:db8:2::/48"], record: country("GB")),
                Network(
                    blocks: ["100.64.0.0/10"],
                    record: country("NL").merging(["traits": ["is_anonymous_proxy": true]]) { $1 }),
            ])
    }

    /// A GeoIP2-Anonymous-IP–typed database: 192.0.2.128/25 VPN, 198.51.100.7 Tor exit,
    /// 2001:db8:1::/64 hosting provider only, 2001:db8:2::/64 public proxy.
    static func writeAnonymous(to path: String, databaseType: String = "GeoIP2-Anonymous-IP") throws {
        try write(
            to: path, databaseType: databaseType,
            networks: [
                Network(blocks: ["192.0.2.128/25"], record: ["is_anonymous": true, "is_anonymous_vpn": true]),
                Network(blocks: ["198.51.100.7/32"], record: ["is_anonymous": true, "is_tor_exit_node": true]),
                Network(blocks: ["2001:db8:1::/64"], record: ["is_hosting_provider": true]),
                Network(blocks: ["2001:db8:2::/64"], record: ["is_anonymous": true, "is_public_proxy": true]),
            ])
    }

    /// A fresh directory under the system's temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-geo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
