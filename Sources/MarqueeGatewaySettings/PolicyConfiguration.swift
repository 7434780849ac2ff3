import Configuration
import MarqueeGateway
import MarqueeHTTP
import MarqueePolicy
import MarqueeTokens

/// Reads the access policy keys (`tokens.*`, `client.*`, `geo.*`, `rate_limits.*`, `redis.*`,
/// `revocation.*`). Lists of rules are one line each, a small grammar an operator can read:
///
///     rate_limits.limits:   "NAME key=client|session|route route=media|api|any rate=N/PERIOD [burst=N] [delay=DURATION]"
///     geo.rules:            "/titles/x/ allow=US,CA [deny_anonymous]"   or   "/titles/y/ deny=FR"
///     geo.overrides:        "203.0.113.0/24 allow"   "198.51.100.0/24 deny"   "192.0.2.0/24 country=FR"
enum PolicyConfiguration {
    /// A prefix served without a token: `/name/...`, never the whole site nor the media paths.
    static func publicPrefix(_ text: String) throws -> String {
        guard text.hasPrefix("/"), text.hasSuffix("/"), text.count > 1, !text.contains("//"),
            !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == 0x25 || $0 == 0x5C })
        else {
            throw GatewayError.invalid("tokens.public_prefixes", ": \"\(text)\" must be a path like /player/ (starting and ending with /, no spaces, % or backslashes)")
        }
        guard !text.hasPrefix("/titles/"), !text.hasPrefix("/t/"), !text.hasPrefix("/api/") else {
            throw GatewayError.invalid("tokens.public_prefixes", ": \"\(text)\" would expose media (/titles/, /t/) or name the services (/api/)")
        }
        return text
    }

    static func load(_ config: ConfigReader, tokenKeys: [String], tokenKeyDirectory: String?, requireToken: Bool?) throws -> PolicySettings {
        var p = PolicySettings()
        let keys = tokenKeys + config.stringArray(forKey: "tokens.keys", default: []).filter { !$0.isEmpty }
        p.tokenKeys = try keys.map { text in
            do { return try TokenKeyFiles.KeyFile(parsing: text) } catch { throw GatewayError.invalid("tokens.keys", ": \(error)") }
        }
        let directory = tokenKeyDirectory ?? config.string(forKey: "tokens.key_directory", default: "")
        p.tokenKeyDirectory = directory.isEmpty ? nil : directory
        p.requireToken = requireToken ?? config.bool(forKey: "tokens.required", default: true)
        p.publicPrefixes = try config.stringArray(forKey: "tokens.public_prefixes", default: []).map(publicPrefix)

        p.trustedProxies = try config.stringArray(forKey: "client.trusted_proxies", default: []).map { text in
            guard let block = CIDR(text) else { throw GatewayError.invalid("client.trusted_proxies", ": \"\(text)\" is not an address or CIDR block") }
            return block
        }

        let database = config.string(forKey: "geo.database", default: "")
        p.geoDatabase = database.isEmpty ? nil : database
        let anonymous = config.string(forKey: "geo.anonymous_database", default: "")
        p.geoAnonymousDatabase = anonymous.isEmpty ? nil : anonymous
        switch config.string(forKey: "geo.unknown_country", default: "allow") {
        case "allow": p.geoUnknownCountry = .allow
        case "deny": p.geoUnknownCountry = .deny
        case let other: throw GatewayError.invalid("geo.unknown_country", "must be \"allow\" or \"deny\", got \"\(other)\"")
        }
        p.geoRules = try config.stringArray(forKey: "geo.rules", default: []).map(geoRule)
        p.geoOverrides = try config.stringArray(forKey: "geo.overrides", default: []).map(geoOverride)

        p.rateLimits = try config.stringArray(forKey: "rate_limits.limits", default: []).map(rateDescriptor)
        let names = p.rateLimits.map(\.limit.name)
        if Set(names).count != names.count { throw GatewayError.invalid("rate_limits.limits", ": names must be unique") }
        p.rateLimitTableSlots = config.int(forKey: "rate_limits.table_slots", default: p.rateLimitTableSlots)
        guard p.rateLimitTableSlots >= 16, p.rateLimitTableSlots <= 1 << 26 else {
            throw GatewayError.invalid("rate_limits.table_slots", "must be between 16 and 67108864")
        }
        let headers = config.string(forKey: "rate_limits.headers", default: p.rateLimitHeaders.rawValue)
        guard let headerMode = PolicySettings.RateLimitHeaders(rawValue: headers) else {
            throw GatewayError.invalid("rate_limits.headers", "must be \"limited\" or \"always\", got \"\(headers)\"")
        }
        p.rateLimitHeaders = headerMode
        p.maxConnectionsPerAddress = config.int(forKey: "rate_limits.max_connections_per_address", default: p.maxConnectionsPerAddress)
        guard p.maxConnectionsPerAddress >= 0 else { throw GatewayError.invalid("rate_limits.max_connections_per_address", "must not be negative") }

        let redis = config.string(forKey: "redis.url", default: "")
        p.redisURL = redis.isEmpty ? nil : redis
        p.redisTimeoutMilliseconds = config.int(forKey: "redis.timeout_ms", default: p.redisTimeoutMilliseconds)
        guard p.redisTimeoutMilliseconds > 0 else { throw GatewayError.invalid("redis.timeout_ms", "must be positive") }
        let failMode = config.string(forKey: "redis.fail_mode", default: p.redisFailMode.rawValue)
        guard let mode = PolicySettings.RedisFailMode(rawValue: failMode) else {
            throw GatewayError.invalid("redis.fail_mode", "must be \"local\", \"open\" or \"closed\", got \"\(failMode)\"")
        }
        p.redisFailMode = mode
        p.revocationSlots = config.int(forKey: "revocation.slots", default: p.revocationSlots)
        guard p.revocationSlots >= 16 else { throw GatewayError.invalid("revocation.slots", "must be at least 16") }
        return p
    }

    /// `NAME key=client route=media rate=100/1s burst=200 [delay=5s]`
    static func rateDescriptor(_ line: String) throws -> RateDescriptor {
        func fail(_ why: String) -> GatewayError { GatewayError.invalid("rate_limits.limits", ": \"\(line)\": \(why)") }
        let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let name = words.first, !name.contains("="), name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") }) else {
            throw fail("must start with a name (printable, no quotes)")
        }
        var key: RateDescriptor.Key?
        var route = RateDescriptor.Route.any
        var rate: (Int, Int64)?
        var burst: Int?
        var delay: Int64 = 0
        for word in words.dropFirst() {
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw fail("\"\(word)\" is not name=value") }
            switch parts[0] {
            case "key":
                guard let k = RateDescriptor.Key(rawValue: parts[1]) else { throw fail("key must be client, session or route") }
                key = k
            case "route":
                guard let r = RateDescriptor.Route(rawValue: parts[1]) else { throw fail("route must be media, api or any") }
                route = r
            case "rate":
                guard let parsed = parseRate(parts[1]) else { throw fail("rate must look like 100/1s, 20/500ms or 1000/1m") }
                rate = parsed
            case "burst":
                guard let b = Int(parts[1]), b > 0 else { throw fail("burst must be a positive integer") }
                burst = b
            case "delay":
                guard let d = parseDuration(parts[1]), d <= 60_000 else {
                    throw fail("delay must be a duration up to 60s, such as 500ms, 5s or 1m")
                }
                delay = d
            default:
                throw fail("unknown setting \"\(parts[0])\" (key, route, rate, burst, delay)")
            }
        }
        guard let key else { throw fail("key= is required") }
        guard let (limit, period) = rate else { throw fail("rate= is required") }
        return RateDescriptor(limit: RateLimit(name: name, limit: limit, periodMilliseconds: period, burst: burst, delayMilliseconds: delay), key: key, route: route)
    }

    /// `100/1s` → (100, 1000 ms).
    static func parseRate(_ text: String) -> (Int, Int64)? {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let count = Int(parts[0]), count > 0, let period = parseDuration(parts[1], bareUnit: true) else {
            return nil
        }
        return (count, period)
    }

    /// `500ms`, `5s`, `1m`, `1h` → milliseconds (positive). With `bareUnit`, `s` alone means `1s`.
    static func parseDuration(_ text: String, bareUnit: Bool = false) -> Int64? {
        var unit = text
        let multiplier: Int64
        if unit.hasSuffix("ms") {
            multiplier = 1
            unit.removeLast(2)
        } else if unit.hasSuffix("s") {
            multiplier = 1000
            unit.removeLast()
        } else if unit.hasSuffix("m") {
            multiplier = 60_000
            unit.removeLast()
        } else if unit.hasSuffix("h") {
            multiplier = 3_600_000
            unit.removeLast()
        } else {
            return nil
        }
        let amount = unit.isEmpty && bareUnit ? 1 : Int64(unit)
        guard let amount, amount > 0, amount < Int64.max / multiplier else { return nil }
        return amount * multiplier
    }

    /// `/titles/x/ allow=US,CA deny_anonymous`
    static func geoRule(_ line: String) throws -> GeoRule {
        func fail(_ why: String) -> GatewayError { GatewayError.invalid("geo.rules", ": \"\(line)\": \(why)") }
        let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let prefix = words.first, prefix.hasPrefix("/") else { throw fail("must start with a path prefix such as /titles/x/") }
        var mode: GeoRule.Mode?
        var denyAnonymous = false
        for word in words.dropFirst() {
            if word == "deny_anonymous" {
                denyAnonymous = true
                continue
            }
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0] == "allow" || parts[0] == "deny" else {
                throw fail("\"\(word)\" should be allow=CC,CC, deny=CC,CC or deny_anonymous")
            }
            guard mode == nil else { throw fail("give either allow= or deny=, once") }
            let codes = try parts[1].split(separator: ",").map { code in
                guard let c = CountryCode(String(code)) else { throw fail("\"\(code)\" is not a two-letter country code") }
                return c
            }
            mode = parts[0] == "allow" ? .allow(codes) : .deny(codes)
        }
        return GeoRule(pathPrefix: prefix, mode: mode ?? .deny([]), denyAnonymous: denyAnonymous)
    }

    /// `203.0.113.0/24 allow|deny|country=FR`
    static func geoOverride(_ line: String) throws -> GeoOverride {
        func fail(_ why: String) -> GatewayError { GatewayError.invalid("geo.overrides", ": \"\(line)\": \(why)") }
        let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard words.count == 2, let block = CIDR(words[0]) else { throw fail("must be \"<address or CIDR> allow|deny|country=CC\"") }
        switch words[1] {
        case "allow": return GeoOverride(block: block, action: .allow)
        case "deny": return GeoOverride(block: block, action: .deny)
        default:
            guard words[1].hasPrefix("country="), let code = CountryCode(String(words[1].dropFirst(8))) else {
                throw fail("the action must be allow, deny or country=CC")
            }
            return GeoOverride(block: block, action: .country(code))
        }
    }
}
