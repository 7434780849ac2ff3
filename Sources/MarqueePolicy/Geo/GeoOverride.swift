import MarqueeHTTP

/// An exception for an address block that takes precedence over what the database says: partner
/// networks that must always get through, abusive ones that never should, and ranges the
/// database places wrongly.
public struct GeoOverride: Hashable, Sendable {
    /// What happens to addresses in the block.
    public enum Action: Hashable, Sendable {
        /// Bypass every geo rule (no database lookup).
        case allow
        /// Refuse on every path, whether or not a rule covers it.
        case deny
        /// Treat the address as located in this country; the rules then apply as usual.
        case country(CountryCode)
    }

    /// The addresses the override covers. When blocks overlap, the most specific one wins.
    public var block: CIDR
    /// What to do with them.
    public var action: Action

    /// An override for `block`.
    public init(block: CIDR, action: Action) {
        self.block = block
        self.action = action
    }
}
