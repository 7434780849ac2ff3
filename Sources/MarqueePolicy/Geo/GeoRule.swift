/// Which countries may fetch the paths under one prefix.
public struct GeoRule: Hashable, Sendable {
    /// Whom the rule lets through.
    public enum Mode: Hashable, Sendable {
        /// Only these countries.
        case allow([CountryCode])
        /// Everyone except these countries.
        case deny([CountryCode])
    }

    /// The path prefix the rule covers. `"/films/"` covers every path under `/films/`; `"/films"`
    /// covers `/films` itself and paths under `/films/`, but not `/filmstrip`. `"/"` covers all.
    /// The leading slash is optional: rules match decoded paths with or without one.
    public var pathPrefix: String
    /// The countries the rule allows or denies.
    public var mode: Mode
    /// Also refuse addresses a database marks as anonymizing (VPN, proxy, Tor). Takes effect
    /// only with a database that carries those flags (an Anonymous IP database, or the legacy
    /// `traits.is_anonymous_proxy` of City/Country databases).
    public var denyAnonymous: Bool

    /// A rule for `pathPrefix`.
    public init(pathPrefix: String, mode: Mode, denyAnonymous: Bool = false) {
        self.pathPrefix = pathPrefix
        self.mode = mode
        self.denyAnonymous = denyAnonymous
    }
}
