/// The catalog's access rule for one title: whether it is published, when it may be watched and
/// where.
public struct TitleRule: Sendable, Equatable {
    public enum GeoMode: Sendable, Equatable {
        /// Only these countries.
        case allow([CountryCode])
        /// Everywhere but these countries.
        case deny([CountryCode])
    }

    public var id: String
    /// `status == "published"` in the catalog; anything else is not served.
    public var isPublished: Bool
    /// Unix seconds; nil for no bound.
    public var availableFrom: Int64?
    public var availableUntil: Int64?
    public var geo: GeoMode?

    public init(id: String, isPublished: Bool, availableFrom: Int64? = nil, availableUntil: Int64? = nil, geo: GeoMode? = nil) {
        self.id = id
        self.isPublished = isPublished
        self.availableFrom = availableFrom
        self.availableUntil = availableUntil
        self.geo = geo
    }
}
