import Foundation
import MarqueeHTTP
import Testing
@testable import MarqueePolicy

@Suite("Geo policy")
struct GeoPolicyTests {
    /// One country database for the suite: FR 192.0.2.0/24, DE 198.51.100.0/24, US 2001:db8:1::/48,
    /// GB 2001:db8:2::/48, NL 100.64.0.0/10 (anonymous proxy); plus an Anonymous IP database.
    final class Databases: Sendable {
        let directory: URL
        let countries: GeoDatabase
        let anonymous: GeoDatabase
        /// The anonymous records, in a database whose type does not announce them.
        let unannounced: GeoDatabase

        init() throws {
            directory = try GeoDatabases.temporaryDirectory()
            let countries = directory.appendingPathComponent("countries.mmdb").path
            let anonymous = directory.appendingPathComponent("anonymous.mmdb").path
            let unannounced = directory.appendingPathComponent("unannounced.mmdb").path
            try GeoDatabases.writeCountries(to: countries)
            try GeoDatabases.writeAnonymous(to: anonymous)
            try GeoDatabases.writeAnonymous(to: unannounced, databaseType: "Marquee-Test-Country")
            self.countries = try GeoDatabase(path: countries)
            self.anonymous = try GeoDatabase(path: anonymous)
            self.unannounced = try GeoDatabase(path: unannounced)
        }

        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    let databases: Databases
    init() throws { databases = try Databases() }

    static let france = IPAddress("192.0.2.10")!
    static let franceVPN = IPAddress("192.0.2.200")!
    static let germany = IPAddress("198.51.100.1")!
    static let germanTor = IPAddress("198.51.100.7")!
    static let usa = IPAddress("2001:db8:1::1")!
    static let britain = IPAddress("2001:db8:2::1")!
    static let dutchProxy = IPAddress("100.64.0.1")!
    static let privateAddress = IPAddress("10.0.0.1")!

    static func codes(_ list: String...) -> [CountryCode] { list.map { CountryCode($0)! } }

    func decide(_ policy: GeoPolicy, _ path: String, _ client: IPAddress, anonymous: GeoDatabase? = nil) -> GeoDecision {
        policy.evaluate(path: path, client: client, database: databases.countries, anonymousDatabase: anonymous)
    }

    func denial(_ reason: GeoDenial.Reason, _ country: String?) -> GeoDecision {
        .denied(GeoDenial(reason: reason, country: country.map { CountryCode($0)! } ?? .unknown))
    }

    @Test func allowListServesOnlyListedCountries() {
        let policy = GeoPolicy(rules: [GeoRule(pathPrefix: "/eu/", mode: .allow(Self.codes("FR", "DE")))])
        #expect(decide(policy, "/eu/film.mp4", Self.france) == .allowed(country: CountryCode("FR")!))
        #expect(decide(policy, "/eu/film.mp4", Self.germany) == .allowed(country: CountryCode("DE")!))
        #expect(decide(policy, "/eu/film.mp4", Self.usa) == denial(.countryNotAllowed, "US"))
        #expect(decide(policy, "/eu/film.mp4", Self.britain) == denial(.countryNotAllowed, "GB"))
    }

    @Test func denyListRefusesOnlyListedCountries() {
        let policy = GeoPolicy(rules: [GeoRule(pathPrefix: "/", mode: .deny(Self.codes("us")))])
        #expect(decide(policy, "/a", Self.usa) == denial(.countryDenied, "US"))
        #expect(decide(policy, "/a", Self.france) == .allowed(country: CountryCode("FR")!))
        #expect(decide(policy, "/", Self.usa) == denial(.countryDenied, "US"))
    }

    @Test func longestPrefixWins() {
        let policy = GeoPolicy(rules: [
            GeoRule(pathPrefix: "/", mode: .deny(Self.codes("FR"))),
            GeoRule(pathPrefix: "/films/", mode: .allow(Self.codes("FR"))),
            GeoRule(pathPrefix: "/films/us", mode: .allow(Self.codes("US"))),
        ])
        #expect(decide(policy, "/films/a.mp4", Self.france).isAllowed)
        #expect(decide(policy, "/films/a.mp4", Self.usa) == denial(.countryNotAllowed, "US"))
        #expect(decide(policy, "/films/us", Self.usa).isAllowed)
        #expect(decide(policy, "/films/us/b.mp4", Self.usa).isAllowed)
        #expect(decide(policy, "/films/us/b.mp4", Self.france) == denial(.countryNotAllowed, "FR"))
        // Not under "/films/us": the sibling falls back to "/films/".
        #expect(decide(policy, "/films/usa.mp4", Self.france).isAllowed)
        // "/films" is not under "/films/": the root rule applies.
        #expect(decide(policy, "/films", Self.france) == denial(.countryDenied, "FR"))
        #expect(decide(policy, "/other", Self.france) == denial(.countryDenied, "FR"))
    }

    @Test func prefixWithoutSlashCoversItselfAndWhatIsUnderIt() {
        let policy = GeoPolicy(rules: [GeoRule(pathPrefix: "/live", mode: .allow(Self.codes("DE")))])
        #expect(decide(policy, "/live", Self.france) == denial(.countryNotAllowed, "FR"))
        #expect(decide(policy, "/live/", Self.france) == denial(.countryNotAllowed, "FR"))
        #expect(decide(policy, "/live/x.m3u8", Self.france) == denial(.countryNotAllowed, "FR"))
        #expect(decide(policy, "/livestream", Self.france) == .allowed(country: .unknown))
        // Decoded paths come without the leading slash; rules match them the same way.
        #expect(decide(policy, "live/x.m3u8", Self.france) == denial(.countryNotAllowed, "FR"))
    }

    @Test func pathWithoutRuleIsAllowedWithoutLookup() {
        let policy = GeoPolicy(rules: [GeoRule(pathPrefix: "/eu/", mode: .allow(Self.codes("FR")))], unknownCountry: .deny)
        #expect(decide(policy, "/us/x", Self.usa) == .allowed(country: .unknown))
        #expect(decide(policy, "/e", Self.usa) == .allowed(country: .unknown))
        #expect(decide(policy, "", Self.usa) == .allowed(country: .unknown))
        // No database at all: still allowed, since nothing asked for a country.
        #expect(policy.evaluate(path: "/us/x", client: Self.privateAddress, database: nil, anonymousDatabase: nil) == .allowed(country: .unknown))
        #expect(GeoPolicy(rules: []).evaluate(path: "/x", client: Self.usa, database: nil) == .allowed(country: .unknown))
    }

    @Test func unknownCountryFollowsThePolicy() {
        let rules = [GeoRule(pathPrefix: "/", mode: .allow(Self.codes("FR")))]
        let allowing = GeoPolicy(rules: rules, unknownCountry: .allow)
        let denying = GeoPolicy(rules: rules, unknownCountry: .deny)
        #expect(decide(allowing, "/x", Self.privateAddress) == .allowed(country: .unknown))
        #expect(decide(denying, "/x", Self.privateAddress) == denial(.unknownCountry, nil))
        #expect(denying.evaluate(path: "/x", client: Self.france, database: nil) == denial(.unknownCountry, nil))
        #expect(allowing.evaluate(path: "/x", client: Self.usa, database: nil) == .allowed(country: .unknown))
    }

    @Test func overridesAllowDenyAndRelocate() throws {
        let policy = GeoPolicy(
            rules: [GeoRule(pathPrefix: "/eu/", mode: .allow(Self.codes("FR", "DE")))],
            overrides: [
                GeoOverride(block: try #require(CIDR("2001:db8:1::/48")), action: .allow),
                GeoOverride(block: try #require(CIDR("192.0.2.0/24")), action: .deny),
                GeoOverride(block: try #require(CIDR("10.0.0.0/8")), action: .country(CountryCode("DE")!)),
                GeoOverride(block: try #require(CIDR("2001:db8:2::/48")), action: .country(CountryCode("US")!)),
            ],
            unknownCountry: .deny)
        #expect(decide(policy, "/eu/x", Self.usa) == .allowed(country: .unknown))
        #expect(decide(policy, "/eu/x", Self.france) == denial(.addressDenied, nil))
        // A .deny override refuses even where no rule applies.
        #expect(decide(policy, "/elsewhere", Self.france) == denial(.addressDenied, nil))
        #expect(decide(policy, "/eu/x", Self.privateAddress) == .allowed(country: CountryCode("DE")!))
        #expect(decide(policy, "/eu/x", Self.britain) == denial(.countryNotAllowed, "US"))
        #expect(decide(policy, "/eu/x", Self.germany) == .allowed(country: CountryCode("DE")!))
    }

    @Test func mostSpecificOverrideWins() throws {
        let policy = GeoPolicy(
            rules: [GeoRule(pathPrefix: "/", mode: .deny(Self.codes("FR")))],
            overrides: [
                GeoOverride(block: try #require(CIDR("192.0.2.0/24")), action: .deny),
                GeoOverride(block: try #require(CIDR("192.0.2.10")), action: .allow),
                GeoOverride(block: try #require(CIDR("192.0.2.0/28")), action: .country(CountryCode("DE")!)),
                GeoOverride(block: try #require(CIDR("0.0.0.0/0")), action: .country(CountryCode("FR")!)),
            ])
        #expect(decide(policy, "/x", IPAddress("192.0.2.10")!) == .allowed(country: .unknown))
        #expect(decide(policy, "/x", IPAddress("192.0.2.11")!) == .allowed(country: CountryCode("DE")!))
        #expect(decide(policy, "/x", IPAddress("192.0.2.99")!) == denial(.addressDenied, nil))
        #expect(decide(policy, "/x", Self.germany) == denial(.countryDenied, "FR"))
        // IPv4 blocks, even 0.0.0.0/0, do not cover IPv6 addresses.
        #expect(decide(policy, "/x", Self.usa) == .allowed(country: CountryCode("US")!))
    }

    @Test func anonymousNetworksAreRefusedOnlyWhereAskedAndKnown() {
        let guarded = GeoPolicy(rules: [
            GeoRule(pathPrefix: "/", mode: .deny([])),
            GeoRule(pathPrefix: "/premium/", mode: .deny([]), denyAnonymous: true),
        ])
        let anonymous = databases.anonymous
        #expect(decide(guarded, "/premium/a", Self.franceVPN, anonymous: anonymous) == denial(.anonymousNetwork, "FR"))
        #expect(decide(guarded, "/premium/a", Self.germanTor, anonymous: anonymous) == denial(.anonymousNetwork, "DE"))
        #expect(decide(guarded, "/premium/a", Self.france, anonymous: anonymous) == .allowed(country: CountryCode("FR")!))
        // A hosting provider alone is not an anonymizer.
        #expect(decide(guarded, "/premium/a", Self.usa, anonymous: anonymous) == .allowed(country: CountryCode("US")!))
        // Not asked on this path.
        #expect(decide(guarded, "/free/a", Self.franceVPN, anonymous: anonymous) == .allowed(country: CountryCode("FR")!))
        // No anonymity data: nothing to refuse on.
        #expect(decide(guarded, "/premium/a", Self.franceVPN) == .allowed(country: CountryCode("FR")!))
        // Records with the keys, in a database whose type does not carry anonymity: ignored.
        #expect(decide(guarded, "/premium/a", Self.franceVPN, anonymous: databases.unannounced) == .allowed(country: CountryCode("FR")!))
        // The City/Country database's own traits.is_anonymous_proxy counts.
        #expect(decide(guarded, "/premium/a", Self.dutchProxy) == denial(.anonymousNetwork, "NL"))
    }

    @Test func countryRulesComeBeforeAnonymity() {
        let policy = GeoPolicy(rules: [GeoRule(pathPrefix: "/", mode: .allow(Self.codes("DE")), denyAnonymous: true)])
        #expect(decide(policy, "/x", Self.franceVPN, anonymous: databases.anonymous) == denial(.countryNotAllowed, "FR"))
        #expect(decide(policy, "/x", Self.germanTor, anonymous: databases.anonymous) == denial(.anonymousNetwork, "DE"))
    }

    @Test func denialMessagesAndLabels() {
        var buffer = [UInt8](repeating: 0, count: 64)
        let france = GeoDenial(reason: .countryNotAllowed, country: CountryCode("FR")!)
        let written = buffer.withUnsafeMutableBytes { france.writeMessage(into: $0.baseAddress!, capacity: $0.count) }
        #expect(String(decoding: buffer[..<written], as: UTF8.self) == "not available in your country (FR)")
        #expect(france.metricLabel.description == "country_not_allowed")

        let unknown = GeoDenial(reason: .unknownCountry, country: .unknown)
        let short = buffer.withUnsafeMutableBytes { unknown.writeMessage(into: $0.baseAddress!, capacity: $0.count) }
        #expect(String(decoding: buffer[..<short], as: UTF8.self) == unknown.reasonText.description)

        // Cut at capacity, never past it.
        buffer = [UInt8](repeating: 0xEE, count: 40)
        let cut = buffer.withUnsafeMutableBytes { france.writeMessage(into: $0.baseAddress!, capacity: 31) }
        #expect(cut == 31)
        #expect(String(decoding: buffer[..<cut], as: UTF8.self) == "not available in your country (")
        #expect(buffer[31] == 0xEE)

        let labels = GeoDenial.Reason.allCases.map { GeoDenial(reason: $0, country: .unknown).metricLabel.description }
        #expect(labels == ["country_not_allowed", "country_denied", "anonymous_network", "address_denied", "unknown_country"])
    }
}
