import MarqueePolicy

/// `playback.regions`: which edge a viewer's signed URLs point at. Each entry names countries
/// (ISO 3166 `DE`) and continents (`@EU`; MaxMind's codes AF AN AS EU NA OC SA) and the edge base
/// URL players there use: `DE,FR,@EU=https://edge-eu.example.com` (or `DE+FR+@EU=...`). A viewer's country is matched
/// first, across every entry, then its continent; a viewer matching nothing, or whose place is
/// unknown, gets `playback.public_url` (or the address the request came to). Tokens are valid on
/// every edge: they share the key ring.
public struct PlaybackRegions: Sendable, Equatable {
    public struct Region: Sendable, Equatable {
        public var countries: Set<CountryCode>
        public var continents: Set<CountryCode>
        /// `scheme://host[:port]`, without a trailing slash.
        public var base: String
    }

    public private(set) var regions: [Region] = []

    public init() {}

    static let continentCodes: Set<String> = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"]

    /// Parses the entries; the error names the entry and what is wrong with it.
    public init(entries: [String]) throws(RegionError) {
        var claimedCountries: [CountryCode: String] = [:]
        var claimedContinents: [CountryCode: String] = [:]
        for entry in entries {
            guard let equals = entry.firstIndex(of: "=") else {
                throw RegionError("\(entry.debugDescription) must be CODES=URL, e.g. DE,FR,@EU=https://edge-eu.example.com")
            }
            var base = String(entry[entry.index(after: equals)...]).trimmingSpaces
            if base.hasSuffix("/") { base.removeLast() }
            guard base.hasPrefix("http://") || base.hasPrefix("https://"), base.split(separator: "/").count == 2,
                base.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") })
            else {
                throw RegionError("\(entry.debugDescription): \(base.debugDescription) must be http(s)://HOST[:PORT] with no path")
            }
            var region = Region(countries: [], continents: [], base: base)
            // Codes are separated by `,` or `+` (the environment splits lists on commas).
            for code in entry[..<equals].split(whereSeparator: { $0 == "," || $0 == "+" }).map({ String($0).trimmingSpaces }) {
                if code.hasPrefix("@") {
                    let name = String(code.dropFirst()).uppercased()
                    guard Self.continentCodes.contains(name), let continent = CountryCode(name) else {
                        throw RegionError("\(entry.debugDescription): \(code) is not a continent (@AF @AN @AS @EU @NA @OC @SA)")
                    }
                    if let other = claimedContinents[continent] { throw RegionError("\(code) is in two regions (\(other) and \(base))") }
                    claimedContinents[continent] = base
                    region.continents.insert(continent)
                } else {
                    guard let country = CountryCode(code.uppercased()) else {
                        throw RegionError("\(entry.debugDescription): \(code.debugDescription) is not a two-letter country code")
                    }
                    if let other = claimedCountries[country] { throw RegionError("\(code) is in two regions (\(other) and \(base))") }
                    claimedCountries[country] = base
                    region.countries.insert(country)
                }
            }
            guard !region.countries.isEmpty || !region.continents.isEmpty else {
                throw RegionError("\(entry.debugDescription) names no country or continent")
            }
            regions.append(region)
        }
    }

    /// The edge base for a viewer, or nil for the default.
    public func base(country: CountryCode, continent: CountryCode) -> String? {
        if country.isKnown, let region = regions.first(where: { $0.countries.contains(country) }) { return region.base }
        if continent.isKnown, let region = regions.first(where: { $0.continents.contains(continent) }) { return region.base }
        return nil
    }
}

public struct RegionError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = "playback.regions: " + description }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
