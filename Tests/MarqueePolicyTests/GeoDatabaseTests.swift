import Foundation
import MarqueeHTTP
import Testing
@testable import MarqueePolicy

@Suite("Geo databases")
struct GeoDatabaseTests {
    @Test func countryCodesParseTwoLettersInAnyCase() throws {
        #expect(CountryCode("fr") == CountryCode("FR"))
        #expect(CountryCode("Fr")?.description == "FR")
        #expect(CountryCode("F") == nil)
        #expect(CountryCode("FRA") == nil)
        #expect(CountryCode("F1") == nil)
        #expect(CountryCode("") == nil)
        #expect(CountryCode("É") == nil)
        #expect(CountryCode.unknown.description == "--")
        #expect(!CountryCode.unknown.isKnown)
        #expect(try #require(CountryCode("zz")).index == 675)
        #expect(try #require(CountryCode("AA")).index == 0)
    }

    @Test func realGeoLite2CityPlacesWellKnownAddresses() throws {
        let database = try GeoDatabase(path: try GeoDatabases.geoLite2City())
        #expect(database.databaseType == "GeoLite2-City")
        #expect(!database.carriesAnonymity)
        #expect(database.ipVersion == 6)
        #expect(database.lookup(IPAddress("8.8.8.8")!).country == CountryCode("US"))
        #expect(database.lookup(IPAddress("81.2.69.142")!).country == CountryCode("GB"))
        #expect(database.lookup(IPAddress("::ffff:81.2.69.142")!).country == CountryCode("GB"))
        #expect(database.lookup(IPAddress("2001:4860:4860::8888")!).country == CountryCode("US"))
        #expect(database.lookup(IPAddress("10.1.2.3")!) == GeoLookup())
        #expect(database.lookup(IPAddress("::1")!) == GeoLookup())
    }

    @Test func ipv6DatabaseAnswersBothFamiliesAndFallsBackToRegisteredCountry() throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("countries.mmdb").path
        try GeoDatabases.writeCountries(to: path)

        let database = try GeoDatabase(path: path)
        #expect(database.databaseType == "Marquee-Test-Country")
        #expect(database.ipVersion == 6)
        #expect(database.lookup(IPAddress("192.0.2.77")!).country == CountryCode("FR"))
        #expect(database.lookup(IPAddress("198.51.100.1")!).country == CountryCode("DE"))
        #expect(database.lookup(IPAddress("203.0.113.5")!).country == CountryCode("JP"))
        #expect(database.lookup(IPAddress("2001:db8:1::42")!).country == CountryCode("US"))
        #expect(database.lookup(IPAddress("2001:db8:2:ffff::1")!).country == CountryCode("GB"))
        #expect(database.lookup(IPAddress("2001:db8:3::1")!).country == .unknown)
        #expect(database.lookup(IPAddress("192.0.3.1")!).country == .unknown)

        let proxy = database.lookup(IPAddress("100.64.1.1")!)
        #expect(proxy.country == CountryCode("NL"))
        #expect(proxy.isAnonymous)
        #expect(!database.lookup(IPAddress("192.0.2.77")!).isAnonymous)
    }

    @Test func ipv4OnlyDatabaseAnswersIPv4AndKnowsNothingOfIPv6() throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("v4.mmdb").path
        try GeoDatabases.write(
            to: path, ipVersion: 4,
            networks: [GeoDatabases.Network(blocks: ["192.0.2.0/24"], record: GeoDatabases.country("se"))])

        let database = try GeoDatabase(path: path)
        #expect(database.ipVersion == 4)
        #expect(database.lookup(IPAddress("192.0.2.1")!).country == CountryCode("SE"))
        #expect(database.lookup(IPAddress("2001:db8::1")!) == GeoLookup())
    }

    @Test func anonymousIPDatabaseFlags() throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("anonymous.mmdb").path
        try GeoDatabases.writeAnonymous(to: path)

        let database = try GeoDatabase(path: path)
        #expect(database.databaseType == "GeoIP2-Anonymous-IP")
        #expect(database.carriesAnonymity)

        let vpn = database.lookup(IPAddress("192.0.2.200")!)
        #expect(vpn.isAnonymous && vpn.isAnonymousVPN && !vpn.isTorExitNode)
        #expect(vpn.country == .unknown)
        #expect(vpn.isAnonymousNetwork)

        let tor = database.lookup(IPAddress("198.51.100.7")!)
        #expect(tor.isTorExitNode && tor.isAnonymous && !tor.isAnonymousVPN)

        let hosting = database.lookup(IPAddress("2001:db8:1::9")!)
        #expect(hosting.isHostingProvider && !hosting.isAnonymous)
        #expect(!hosting.isAnonymousNetwork)

        let proxy = database.lookup(IPAddress("2001:db8:2::9")!)
        #expect(proxy.isPublicProxy && proxy.isAnonymousNetwork)

        #expect(database.lookup(IPAddress("192.0.2.1")!) == GeoLookup())
    }

    @Test func anonymityKeysAreIgnoredWhenTheTypeDoesNotCarryThem() throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("not-anonymous.mmdb").path
        try GeoDatabases.writeAnonymous(to: path, databaseType: "Marquee-Test-Country")

        let database = try GeoDatabase(path: path)
        #expect(!database.carriesAnonymity)
        #expect(!database.lookup(IPAddress("192.0.2.200")!).isAnonymousNetwork)
    }

    @Test func missingFileErrorNamesThePathAndTheCause() throws {
        let path = "/nonexistent/marquee/GeoLite2-City.mmdb"
        let error = #expect(throws: GeoError.self) { try GeoDatabase(path: path) }
        let message = try #require(error).description
        #expect(message.contains(path))
        #expect(message.contains("Error opening the specified MaxMind DB file"))
        #expect(message.contains("No such file or directory"))
    }

    @Test func fileThatIsNotAMaxMindDatabaseIsRefused() throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("garbage.mmdb").path
        try Data("this is not a MaxMind DB\n".utf8).write(to: URL(fileURLWithPath: path))

        let error = #expect(throws: GeoError.self) { try GeoDatabase(path: path) }
        guard case .openFailed(let failedPath, let reason)? = error else {
            Issue.record("expected openFailed, got \(String(describing: error))")
            return
        }
        #expect(failedPath == path)
        #expect(reason.contains("metadata"), "libmaxminddb's reason: \(reason)")
    }

    @Test func concurrentLookupsAgree() async throws {
        let database = try GeoDatabase(path: try GeoDatabases.geoLite2City())
        let us = IPAddress("8.8.8.8")!
        let gb = IPAddress("81.2.69.142")!
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    (0..<2_000).allSatisfy { i in
                        i & 1 == 0 ? database.lookup(us).country == CountryCode("US") : database.lookup(gb).country == CountryCode("GB")
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results == [true, true, true, true])
    }
}
