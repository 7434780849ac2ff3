import CMaxMindDB
import Glibc
import MarqueeHTTP

/// One open MaxMind DB file (GeoIP2/GeoLite2 City or Country, or a GeoIP2 Anonymous IP database),
/// memory-mapped by libmaxminddb.
///
/// Immutable after `init`: libmaxminddb only reads the mapping during a lookup, so any number of
/// event loops may call `lookup(_:)` at once. Replace a database file by writing a new file and
/// renaming it over the old one: the mapping keeps the old inode alive, whereas truncating and
/// rewriting the file in place would make lookups on the old mapping fault (SIGBUS).
public final class GeoDatabase: @unchecked Sendable {
    // @unchecked: `mmdb` is written only in init and deinit; lookups read it.

    /// The path the database was opened from.
    public let path: String
    /// `metadata.database_type`, e.g. `GeoLite2-City` or `GeoIP2-Anonymous-IP`.
    public let databaseType: String
    /// Whether records carry the top-level anonymity flags of a GeoIP2 Anonymous IP database.
    /// Decided once from the type string, so a lookup on a City database does not probe six keys
    /// that are never there.
    public let carriesAnonymity: Bool
    /// `metadata.ip_version`: 4 for IPv4-only databases, 6 for databases holding both families.
    public let ipVersion: Int
    /// `metadata.build_epoch`, seconds since 1970.
    public let buildEpoch: UInt64

    private let mmdb: UnsafeMutablePointer<MMDB_s>
    private let paths: GeoValuePaths

    /// Opens and maps `path`.
    ///
    /// - Throws: `GeoError.openFailed` naming the path and libmaxminddb's reason (plus the system's
    ///   reason for file errors) when the file is missing, unreadable or not a MaxMind DB.
    public init(path: String) throws(GeoError) {
        let mmdb = UnsafeMutablePointer<MMDB_s>.allocate(capacity: 1)
        mmdb.initialize(to: MMDB_s())
        errno = 0
        let status = MMDB_open(path, UInt32(MMDB_MODE_MMAP), mmdb)
        guard status == MMDB_SUCCESS else {
            let systemError = errno
            // MMDB_open releases what it allocated before failing; only our struct is left.
            mmdb.deallocate()
            var reason = String(cString: MMDB_strerror(status))
            if (status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR) && systemError != 0 {
                reason += " (\(String(cString: strerror(systemError))))"
            }
            throw .openFailed(path: path, reason: reason)
        }
        self.mmdb = mmdb
        self.path = path
        let metadata = mmdb.pointee.metadata
        let type = metadata.database_type.map { String(cString: $0) } ?? ""
        databaseType = type
        carriesAnonymity = type.contains("Anonymous")
        ipVersion = Int(metadata.ip_version)
        buildEpoch = metadata.build_epoch
        paths = .shared
        // Older libmaxminddb releases find the start of the IPv4 subtree lazily on the first IPv4
        // lookup and cache it in the struct; doing one lookup here keeps that write out of the
        // concurrent phase (the handle publishes the database with a release store afterwards).
        _ = lookup(IPAddress(ipv4: 0))
    }

    deinit {
        MMDB_close(mmdb)
        mmdb.deallocate()
    }

    /// What the database knows about `address`; an empty `GeoLookup` when it has no entry, when
    /// an IPv6 address is looked up in an IPv4-only database, or when the record is malformed.
    ///
    /// IPv4(-mapped) addresses are passed to libmaxminddb as `AF_INET`, which it maps into the
    /// IPv4 subtree of IPv6 databases itself. Cost: one tree walk plus a few map lookups in the
    /// mapped file (about half a microsecond); no allocation, no lock, no I/O beyond page faults.
    public func lookup(_ address: IPAddress) -> GeoLookup {
        var status: Int32 = 0
        var result: MMDB_lookup_result_s
        if let v4 = address.ipv4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_addr.s_addr = v4.bigEndian
            result = withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { MMDB_lookup_sockaddr(mmdb, $0, &status) }
            }
        } else {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { out in
                address.withNetworkOrder16 { out.copyMemory(from: $0) }
            }
            result = withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { MMDB_lookup_sockaddr(mmdb, $0, &status) }
            }
        }
        guard status == MMDB_SUCCESS, result.found_entry else { return GeoLookup() }

        var entry = result.entry
        var found = GeoLookup()
        found.country = Self.country(&entry, paths.countryISOCode) ?? Self.country(&entry, paths.registeredCountryISOCode) ?? .unknown
        found.continent = Self.country(&entry, paths.continentCode) ?? .unknown
        if carriesAnonymity {
            found.isAnonymous = Self.flag(&entry, paths.isAnonymous)
            found.isAnonymousVPN = Self.flag(&entry, paths.isAnonymousVPN)
            found.isHostingProvider = Self.flag(&entry, paths.isHostingProvider)
            found.isPublicProxy = Self.flag(&entry, paths.isPublicProxy)
            found.isTorExitNode = Self.flag(&entry, paths.isTorExitNode)
            found.isResidentialProxy = Self.flag(&entry, paths.isResidentialProxy)
        } else {
            found.isAnonymous = Self.flag(&entry, paths.traitsIsAnonymousProxy)
        }
        return found
    }

    /// The two-letter string at `path`; nil when absent, not a string, or not two letters.
    /// libmaxminddb's strings point into the mapping and are not NUL-terminated.
    private static func country(_ entry: inout MMDB_entry_s, _ path: GeoValuePaths.Path) -> CountryCode? {
        var data = MMDB_entry_data_s()
        guard MMDB_aget_value(&entry, &data, path) == MMDB_SUCCESS, data.has_data,
            data.type == UInt32(MMDB_DATA_TYPE_UTF8_STRING), let bytes = data.utf8_string
        else { return nil }
        return CountryCode(bytes: UnsafeRawBufferPointer(start: bytes, count: Int(data.data_size)))
    }

    /// The boolean at `path`; false when absent or of another type.
    private static func flag(_ entry: inout MMDB_entry_s, _ path: GeoValuePaths.Path) -> Bool {
        var data = MMDB_entry_data_s()
        guard MMDB_aget_value(&entry, &data, path) == MMDB_SUCCESS, data.has_data,
            data.type == UInt32(MMDB_DATA_TYPE_BOOLEAN)
        else { return false }
        return data.boolean
    }
}
