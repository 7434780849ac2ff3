/// One response on a media path, as a gateway saw it: what was asked for, what went out, and for
/// whom. Billing meters from these, analytics rolls them up, the edge reports with them. The
/// layout (`DeliveryRecordLayout`) is the contract in `docs/delivery-records.md`; this is its
/// decoded form, for consumers off the request path.
public struct DeliveryRecord: Sendable, Equatable {
    /// Whether the response came from a cache, and which way.
    public enum CacheStatus: UInt8, Sendable, CaseIterable {
        /// Not a cache (an origin serving its store or folder directly).
        case none = 0
        case hit = 1
        case miss = 2
    }

    /// A coarse class of the client address; the address itself is never recorded.
    public enum ClientClass: UInt8, Sendable, CaseIterable {
        case unknown = 0
        case publicIPv4 = 1
        case publicIPv6 = 2
        /// RFC 1918, unique-local and link-local addresses.
        case privateNetwork = 3
        case loopback = 4
    }

    /// When the last byte went out (or the response was cut), in microseconds since the epoch.
    public var endMicroseconds: Int64
    /// From the first byte of the response to the last, in microseconds.
    public var durationMicroseconds: UInt32
    public var status: UInt16
    /// Bytes of the body that really went out (an aborted response records what was sent).
    public var bytesSent: UInt64
    /// The whole object's size in bytes (the representation, not the range).
    public var objectSize: UInt64
    /// The byte range asked for and served (`first...last`), nil for the whole object.
    public var range: ClosedRange<UInt64>?
    /// The response ended before all its bytes went out (client gone, timeout).
    public var aborted: Bool
    public var cache: CacheStatus
    /// ISO 3166-1 alpha-2, nil when unknown.
    public var country: String?
    public var clientClass: ClientClass
    /// The session id from the URL token (`sid`), nil without one.
    public var sessionID: String?
    /// From the path `/titles/<title>/<version>/<object>`; nil for other paths.
    public var titleID: String?
    public var packageVersion: String?
    /// The object's path inside the package, e.g. `video/720p/seg_00042.m4s`.
    public var objectPath: String
    /// The CMCD keys the player sent (CTA-5004), as the dictionary text of the `CMCD` query
    /// parameter or the `CMCD-*` headers joined with commas; empty when none were sent.
    public var cmcd: String
    /// A field did not fit its room in the layout and was cut (counted by the gateway).
    public var truncated: Bool

    public init(
        endMicroseconds: Int64, durationMicroseconds: UInt32, status: UInt16, bytesSent: UInt64, objectSize: UInt64,
        range: ClosedRange<UInt64>? = nil, aborted: Bool = false, cache: CacheStatus = .none, country: String? = nil,
        clientClass: ClientClass = .unknown, sessionID: String? = nil, titleID: String? = nil, packageVersion: String? = nil,
        objectPath: String, cmcd: String = "", truncated: Bool = false
    ) {
        self.endMicroseconds = endMicroseconds
        self.durationMicroseconds = durationMicroseconds
        self.status = status
        self.bytesSent = bytesSent
        self.objectSize = objectSize
        self.range = range
        self.aborted = aborted
        self.cache = cache
        self.country = country
        self.clientClass = clientClass
        self.sessionID = sessionID
        self.titleID = titleID
        self.packageVersion = packageVersion
        self.objectPath = objectPath
        self.cmcd = cmcd
        self.truncated = truncated
    }
}
