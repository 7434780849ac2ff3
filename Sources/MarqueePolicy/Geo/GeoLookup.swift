/// What a database knows about one address. A plain value: building one allocates nothing.
public struct GeoLookup: Hashable, Sendable {
    /// The country the address is in (`country.iso_code`, else `registered_country.iso_code`);
    /// `unknown` when the database has no entry or the database carries no countries.
    public var country: CountryCode
    /// The continent (`continent.code`: AF, AN, AS, EU, NA, OC, SA); `unknown` when the database
    /// has none (Country and City databases carry it).
    public var continent: CountryCode = .unknown
    /// `is_anonymous` (Anonymous IP databases) or `traits.is_anonymous_proxy` (City/Country).
    public var isAnonymous: Bool
    /// `is_anonymous_vpn`: a VPN provider's exit address.
    public var isAnonymousVPN: Bool
    /// `is_hosting_provider`: a hosting or cloud network.
    public var isHostingProvider: Bool
    /// `is_public_proxy`: an open proxy.
    public var isPublicProxy: Bool
    /// `is_tor_exit_node`: a Tor exit relay.
    public var isTorExitNode: Bool
    /// `is_residential_proxy`: a residential proxy network.
    public var isResidentialProxy: Bool

    /// A lookup that found nothing.
    public init(
        country: CountryCode = .unknown, isAnonymous: Bool = false, isAnonymousVPN: Bool = false,
        isHostingProvider: Bool = false, isPublicProxy: Bool = false, isTorExitNode: Bool = false,
        isResidentialProxy: Bool = false
    ) {
        self.country = country
        self.isAnonymous = isAnonymous
        self.isAnonymousVPN = isAnonymousVPN
        self.isHostingProvider = isHostingProvider
        self.isPublicProxy = isPublicProxy
        self.isTorExitNode = isTorExitNode
        self.isResidentialProxy = isResidentialProxy
    }

    /// Whether the address hides its user: anonymous, VPN, public proxy, Tor or residential proxy.
    /// Hosting providers alone do not count: CI systems, corporate egress and other legitimate
    /// clients live in clouds, and MaxMind sets `is_anonymous` itself for the hosting ranges it
    /// considers anonymizing.
    @inlinable public var isAnonymousNetwork: Bool {
        isAnonymous || isAnonymousVPN || isPublicProxy || isTorExitNode || isResidentialProxy
    }
}
