import Glibc
import MarqueeHTTP

/// Which countries may fetch which paths, decided per request on the event loop.
///
/// Built once from configuration values; `evaluate` then works on flat arrays prepared here
/// (prefix bytes in one buffer, country sets as inline bitmaps), so a decision allocates nothing,
/// takes no lock and shares nothing mutable: any number of loops may evaluate one policy at once.
public struct GeoPolicy: Sendable {
    /// What to do with an address the database cannot place (private ranges, new allocations,
    /// or no database configured).
    public enum UnknownCountry: Hashable, Sendable {
        /// Serve it as if every rule allowed it.
        case allow
        /// Refuse it on every path a rule covers.
        case deny
    }

    /// The rules as configured.
    public let rules: [GeoRule]
    /// The overrides as configured.
    public let overrides: [GeoOverride]
    /// The fallback for addresses without a country.
    public let unknownCountry: UnknownCountry

    /// Rules ordered longest prefix first, so the first match is the most specific.
    private let compiledRules: [CompiledRule]
    /// Every rule's prefix (without its leading slash), back to back.
    private let prefixBytes: [UInt8]
    /// Overrides ordered most specific block first.
    private let orderedOverrides: [GeoOverride]

    private struct CompiledRule: Sendable {
        var offset: Int
        var length: Int
        /// The prefix ended in "/" (or was "/"): it covers what is under it, not a sibling file.
        var coversDirectoryOnly: Bool
        var isAllowList: Bool
        var countries: CountrySet
        var denyAnonymous: Bool
    }

    /// A policy from configuration values.
    ///
    /// - Parameters:
    ///   - rules: Per-path rules; the longest matching prefix wins, and among equal prefixes the
    ///     one listed first.
    ///   - overrides: Per-address-block exceptions; the most specific block wins.
    ///   - unknownCountry: The fallback for addresses without a country. Default `.allow`.
    public init(rules: [GeoRule], overrides: [GeoOverride] = [], unknownCountry: UnknownCountry = .allow) {
        self.rules = rules
        self.overrides = overrides
        self.unknownCountry = unknownCountry

        var bytes: [UInt8] = []
        var compiled: [(order: Int, rule: CompiledRule)] = []
        for (order, rule) in rules.enumerated() {
            var prefix = Array(rule.pathPrefix.utf8)
            if prefix.first == UInt8(ascii: "/") { prefix.removeFirst() }
            let codes: [CountryCode]
            let isAllowList: Bool
            switch rule.mode {
            case .allow(let list): (codes, isAllowList) = (list, true)
            case .deny(let list): (codes, isAllowList) = (list, false)
            }
            let entry = CompiledRule(
                offset: bytes.count, length: prefix.count,
                coversDirectoryOnly: prefix.isEmpty || prefix.last == UInt8(ascii: "/"),
                isAllowList: isAllowList, countries: CountrySet(codes), denyAnonymous: rule.denyAnonymous)
            bytes += prefix
            compiled.append((order, entry))
        }
        compiled.sort { $0.rule.length != $1.rule.length ? $0.rule.length > $1.rule.length : $0.order < $1.order }
        compiledRules = compiled.map(\.rule)
        prefixBytes = bytes
        orderedOverrides = overrides.enumerated()
            .sorted { $0.element.block.prefixLength != $1.element.block.prefixLength
                ? $0.element.block.prefixLength > $1.element.block.prefixLength : $0.offset < $1.offset }
            .map(\.element)
    }

    /// Decides whether `client` may fetch `path`.
    ///
    /// Order: a `.deny` override refuses on every path; a path no rule covers is allowed without
    /// a lookup; an `.allow` override is allowed without a lookup; otherwise the country comes
    /// from a `.country` override or `database`, an unknown country follows `unknownCountry`, the
    /// rule's country list applies, and last, when the rule asks for it, the anonymity flags of
    /// both databases.
    ///
    /// - Parameters:
    ///   - path: The decoded request path without query (as the file is resolved: a raw path
    ///     can spell the same file several ways). A leading slash is optional.
    ///   - client: The client address (see `TrustedProxies`).
    ///   - database: The City/Country database; nil when none is configured (countries unknown).
    ///   - anonymousDatabase: An Anonymous IP database, consulted only for `denyAnonymous` rules.
    /// - Returns: The decision. Cost: a prefix scan, an override scan, and at most two database
    ///   lookups; no allocation.
    public func evaluate(
        path: UnsafeRawBufferPointer, client: IPAddress, database: GeoDatabase?, anonymousDatabase: GeoDatabase?
    ) -> GeoDecision {
        let action = overrideAction(for: client)
        if case .deny? = action { return .denied(GeoDenial(reason: .addressDenied, country: .unknown)) }
        guard let rule = matchingRule(path) else { return .allowed(country: .unknown) }

        var country = CountryCode.unknown
        var found = GeoLookup()
        switch action {
        case .allow?:
            return .allowed(country: .unknown)
        case .country(let pretended)?:
            country = pretended
            if rule.denyAnonymous, let database { found = database.lookup(client) }
        default:
            if let database {
                found = database.lookup(client)
                country = found.country
            }
        }

        if !country.isKnown {
            if unknownCountry == .deny { return .denied(GeoDenial(reason: .unknownCountry, country: country)) }
        } else if rule.isAllowList != rule.countries.contains(country) {
            return .denied(GeoDenial(reason: rule.isAllowList ? .countryNotAllowed : .countryDenied, country: country))
        }

        if rule.denyAnonymous {
            let anonymous = found.isAnonymousNetwork || (anonymousDatabase?.lookup(client).isAnonymousNetwork ?? false)
            if anonymous { return .denied(GeoDenial(reason: .anonymousNetwork, country: country)) }
        }
        return .allowed(country: country)
    }

    /// Convenience for tests and configuration checks: `evaluate` with a path string.
    public func evaluate(
        path: String, client: IPAddress, database: GeoDatabase?, anonymousDatabase: GeoDatabase? = nil
    ) -> GeoDecision {
        var path = path
        return path.withUTF8 {
            evaluate(path: UnsafeRawBufferPointer($0), client: client, database: database, anonymousDatabase: anonymousDatabase)
        }
    }

    private func overrideAction(for client: IPAddress) -> GeoOverride.Action? {
        for override in orderedOverrides where override.block.contains(client) { return override.action }
        return nil
    }

    private func matchingRule(_ path: UnsafeRawBufferPointer) -> CompiledRule? {
        guard !compiledRules.isEmpty else { return nil }
        var path = path
        if path.first == UInt8(ascii: "/") { path = UnsafeRawBufferPointer(rebasing: path.dropFirst()) }
        return prefixBytes.withUnsafeBytes { prefixes -> CompiledRule? in
            for rule in compiledRules where path.count >= rule.length {
                if rule.length > 0,
                    memcmp(path.baseAddress!, prefixes.baseAddress! + rule.offset, rule.length) != 0
                {
                    continue
                }
                if rule.coversDirectoryOnly || path.count == rule.length || path[rule.length] == UInt8(ascii: "/") {
                    return rule
                }
            }
            return nil
        }
    }
}
