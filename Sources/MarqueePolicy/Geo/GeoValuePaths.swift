import Glibc

/// The NULL-terminated `char *[]` key paths handed to `MMDB_aget_value`. The variadic
/// `MMDB_get_value` cannot be called from Swift, and building the arrays per lookup would
/// allocate, so they are built once per process and never freed.
struct GeoValuePaths: @unchecked Sendable {
    typealias Path = UnsafePointer<UnsafePointer<CChar>?>

    let countryISOCode: Path
    let continentCode: Path
    let registeredCountryISOCode: Path
    let traitsIsAnonymousProxy: Path
    let isAnonymous: Path
    let isAnonymousVPN: Path
    let isHostingProvider: Path
    let isPublicProxy: Path
    let isTorExitNode: Path
    let isResidentialProxy: Path

    /// Built on first use (Swift's global initialisation is thread-safe) and shared by every database.
    static let shared = GeoValuePaths()

    private init() {
        countryISOCode = Self.make("country", "iso_code")
        continentCode = Self.make("continent", "code")
        registeredCountryISOCode = Self.make("registered_country", "iso_code")
        traitsIsAnonymousProxy = Self.make("traits", "is_anonymous_proxy")
        isAnonymous = Self.make("is_anonymous")
        isAnonymousVPN = Self.make("is_anonymous_vpn")
        isHostingProvider = Self.make("is_hosting_provider")
        isPublicProxy = Self.make("is_public_proxy")
        isTorExitNode = Self.make("is_tor_exit_node")
        isResidentialProxy = Self.make("is_residential_proxy")
    }

    private static func make(_ keys: String...) -> Path {
        let array = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: keys.count + 1)
        for (i, key) in keys.enumerated() { array[i] = UnsafePointer(strdup(key)) }
        array[keys.count] = nil
        return UnsafePointer(array)
    }
}
