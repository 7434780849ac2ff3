import MarqueePolicy
import MarqueeTokens

/// Dense indexes of the policy decision counters (one block per loop in `LoopMetrics`), so every
/// decision is counted by check, outcome and reason with one relaxed add.
enum PolicyCounter {
    static let tokenGranted = 0
    @inline(__always) static func tokenRefused(_ refusal: TokenRefusal) -> Int { 1 + Int(refusal.rawValue) }
    static let revokedFunds = 9
    static let revokedOther = 10
    static let geoAllowed = 11
    @inline(__always) static func geoDenied(_ reason: GeoDenial.Reason) -> Int {
        switch reason {
        case .countryNotAllowed: 12
        case .countryDenied: 13
        case .anonymousNetwork: 14
        case .addressDenied: 15
        case .unknownCountry: 16
        }
    }
    static let rateAllowed = 17
    static let rateLimited = 18
    /// Redis could not answer: the fail mode decided (local limiter, open or closed).
    static let rateRedisUnavailable = 19
    static let addressCapRefused = 20
    @inline(__always) static func title(_ decision: TitleDecision) -> Int {
        switch decision {
        case .allowed: 21
        case .rulesNotLoaded: 22
        case .noSuchTitle: 23
        case .notPublished: 24
        case .notYetAvailable: 25
        case .noLongerAvailable: 26
        case .geoDenied: 27
        }
    }
    /// A limit with a delay queued the request instead of refusing it.
    static let rateDelayed = 28
    static let count = 29

    /// (check, outcome, reason) of every index, for `/metrics`.
    static let labels: [(check: String, outcome: String, reason: String)] = {
        var labels = [(String, String, String)](repeating: ("", "", ""), count: count)
        labels[tokenGranted] = ("token", "allow", "valid")
        for refusal in TokenRefusal.allCases { labels[tokenRefused(refusal)] = ("token", "deny", "\(refusal.metricLabel)") }
        labels[revokedFunds] = ("revocation", "deny", "funds")
        labels[revokedOther] = ("revocation", "deny", "other")
        labels[geoAllowed] = ("geo", "allow", "allowed")
        for reason in GeoDenial.Reason.allCases {
            labels[geoDenied(reason)] = ("geo", "deny", "\(GeoDenial(reason: reason, country: .unknown).metricLabel)")
        }
        labels[rateAllowed] = ("rate_limit", "allow", "within_limit")
        labels[rateLimited] = ("rate_limit", "deny", "limited")
        labels[rateDelayed] = ("rate_limit", "delay", "queued")
        labels[rateRedisUnavailable] = ("rate_limit", "fallback", "redis_unavailable")
        labels[addressCapRefused] = ("connections", "deny", "per_address_cap")
        labels[title(.allowed)] = ("title", "allow", "allowed")
        labels[title(.rulesNotLoaded)] = ("title", "deny", "rules_not_loaded")
        labels[title(.noSuchTitle)] = ("title", "deny", "no_such_title")
        labels[title(.notPublished)] = ("title", "deny", "not_published")
        labels[title(.notYetAvailable)] = ("title", "deny", "not_yet_available")
        labels[title(.noLongerAvailable)] = ("title", "deny", "no_longer_available")
        labels[title(.geoDenied(GeoDenial(reason: .countryDenied, country: .unknown)))] = ("title", "deny", "geo")
        return labels
    }()
}
