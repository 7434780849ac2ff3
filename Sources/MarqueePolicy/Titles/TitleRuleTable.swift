import Glibc

/// The catalog's per-title rules as one immutable table, built once per published version and
/// swapped in whole (`SwappableReference`), so event loops look titles up without locks.
///
/// Open addressing over the id bytes (kept back to back in one array), at most half full, so a
/// lookup hashes once and compares a few ids; nothing is allocated per lookup.
public final class TitleRuleTable: Sendable {
    /// The catalog's version number of these rules; -1 before the first answer.
    public let version: Int64
    /// False for the placeholder used until the catalog first answers.
    public let isLoaded: Bool
    public var count: Int { entries.count }

    private struct Entry: Sendable {
        var offset: Int
        var length: Int
        var isPublished: Bool
        var availableFrom: Int64
        var availableUntil: Int64
        /// 0: no geo rule, 1: allow-list, 2: deny-list.
        var geoMode: UInt8
        var countries: CountrySet
    }

    private let idBytes: [UInt8]
    private let entries: [Entry]
    /// Entry index + 1 per slot; 0 is empty. A power of two.
    private let slots: [Int32]
    private let mask: Int

    /// The table before the catalog has answered: every title request gets 503.
    public static let notLoaded = TitleRuleTable(version: -1, rules: [], isLoaded: false)

    /// A table of `rules`; a repeated id keeps its last rule.
    public init(version: Int64, rules: [TitleRule], isLoaded: Bool = true) {
        self.version = version
        self.isLoaded = isLoaded
        var size = 16
        while size < rules.count * 2 { size <<= 1 }
        var slots = [Int32](repeating: 0, count: size)
        var bytes: [UInt8] = []
        var entries: [Entry] = []
        entries.reserveCapacity(rules.count)
        for rule in rules {
            let id = Array(rule.id.utf8)
            var mode: UInt8 = 0
            var countries = CountrySet([])
            switch rule.geo {
            case .allow(let list)?: (mode, countries) = (1, CountrySet(list))
            case .deny(let list)?: (mode, countries) = (2, CountrySet(list))
            case nil: break
            }
            let entry = Entry(
                offset: bytes.count, length: id.count, isPublished: rule.isPublished, availableFrom: rule.availableFrom ?? Int64.min,
                availableUntil: rule.availableUntil ?? Int64.max, geoMode: mode, countries: countries)
            var slot = Int(truncatingIfNeeded: id.withUnsafeBytes { StableHash.hash64($0) }) & (size - 1)
            var replaced = false
            while slots[slot] != 0 {
                let existing = entries[Int(slots[slot]) - 1]
                if existing.length == id.count && Array(bytes[existing.offset..<(existing.offset + existing.length)]) == id {
                    entries[Int(slots[slot]) - 1] = Entry(
                        offset: existing.offset, length: existing.length, isPublished: entry.isPublished,
                        availableFrom: entry.availableFrom, availableUntil: entry.availableUntil, geoMode: entry.geoMode,
                        countries: entry.countries)
                    replaced = true
                    break
                }
                slot = (slot + 1) & (size - 1)
            }
            if replaced { continue }
            bytes += id
            entries.append(entry)
            slots[slot] = Int32(entries.count)
        }
        idBytes = bytes
        self.entries = entries
        self.slots = slots
        mask = size - 1
    }

    /// Decides a request for the title `titleID` at `nowSeconds` (Unix time).
    ///
    /// - Parameters:
    ///   - country: Called only when the title has a geo rule: the client's country (`unknown`
    ///     when it cannot be placed).
    ///   - unknownCountry: What a geo rule does with an unknown country (`geo.unknown_country`).
    /// - Returns: The decision. Cost: one hash and a few comparisons; no allocation.
    public func decide(
        titleID: UnsafeRawBufferPointer, nowSeconds: Int64, unknownCountry: GeoPolicy.UnknownCountry,
        country: () -> CountryCode
    ) -> TitleDecision {
        guard isLoaded else { return .rulesNotLoaded }
        guard let index = find(titleID) else { return .noSuchTitle }
        let entry = entries[index]
        guard entry.isPublished else { return .notPublished }
        if nowSeconds < entry.availableFrom { return .notYetAvailable }
        if nowSeconds >= entry.availableUntil { return .noLongerAvailable }
        guard entry.geoMode != 0 else { return .allowed }
        let code = country()
        guard code.isKnown else {
            return unknownCountry == .deny ? .geoDenied(GeoDenial(reason: .unknownCountry, country: code)) : .allowed
        }
        let listed = entry.countries.contains(code)
        if entry.geoMode == 1 && !listed { return .geoDenied(GeoDenial(reason: .countryNotAllowed, country: code)) }
        if entry.geoMode == 2 && listed { return .geoDenied(GeoDenial(reason: .countryDenied, country: code)) }
        return .allowed
    }

    /// Convenience for tests: `decide` with a string id and a fixed country.
    public func decide(
        titleID: String, nowSeconds: Int64, country: CountryCode = .unknown, unknownCountry: GeoPolicy.UnknownCountry = .allow
    ) -> TitleDecision {
        var id = titleID
        return id.withUTF8 { decide(titleID: UnsafeRawBufferPointer($0), nowSeconds: nowSeconds, unknownCountry: unknownCountry) { country } }
    }

    private func find(_ id: UnsafeRawBufferPointer) -> Int? {
        guard !entries.isEmpty else { return nil }
        var slot = Int(truncatingIfNeeded: StableHash.hash64(id)) & mask
        return idBytes.withUnsafeBytes { all -> Int? in
            while true {
                let found = slots[slot]
                if found == 0 { return nil }
                let entry = entries[Int(found) - 1]
                if entry.length == id.count && (id.count == 0 || memcmp(all.baseAddress! + entry.offset, id.baseAddress!, id.count) == 0) {
                    return Int(found) - 1
                }
                slot = (slot + 1) & mask
            }
        }
    }
}
