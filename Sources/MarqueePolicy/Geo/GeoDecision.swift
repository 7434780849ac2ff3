/// The outcome of `GeoPolicy.evaluate`.
public enum GeoDecision: Hashable, Sendable {
    /// Serve the request. `country` is what the decision was based on; `unknown` when no lookup
    /// was needed (no rule covers the path, or an `.allow` override matched).
    case allowed(country: CountryCode)
    /// Refuse with 451 Unavailable For Legal Reasons.
    case denied(GeoDenial)

    /// Whether the request may proceed.
    @inlinable public var isAllowed: Bool {
        if case .allowed = self { return true }
        return false
    }
}
