import MarqueeGateway
import MarqueeHTTP

/// What an upstream's response head says about caching it: `Cache-Control` (every field),
/// `Expires`, `Date`, `Age`, and the validators `ETag` and `Last-Modified`.
struct ResponseFacts: Equatable, Sendable {
    var cacheControl = CacheControl()
    var expires: Int64?
    /// `Expires` was present but not a date: RFC 9111 §5.3 makes the response already stale.
    var expiresInvalid = false
    var date: Int64?
    var etag: String?
    var lastModified: Int64?
    /// `Age`: seconds the response already spent in caches upstream (a parent edge), taken off its
    /// lifetime (RFC 9111 §4.2.3).
    var age: Int64 = 0

    init() {}

    init(head: UnsafeRawBufferPointer) {
        HeaderFields(head: head).forEach { field in
            switch field.name.count {
            case 4 where field.name.equalsLowercase("etag"):
                // Kept as sent, quotes and W/ included, to be sent back in If-None-Match; a value
                // a header line could not carry again is dropped.
                if field.value.count <= 256 && field.value.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) {
                    etag = String(decoding: field.value, as: UTF8.self)
                }
            case 4 where field.name.equalsLowercase("date"):
                date = HTTPDate.parse(field.value)
            case 3 where field.name.equalsLowercase("age"):
                age = CacheControl.seconds(field.value)
            case 7 where field.name.equalsLowercase("expires"):
                expires = HTTPDate.parse(field.value)
                expiresInvalid = expires == nil
            case 13 where field.name.equalsLowercase("cache-control"):
                cacheControl.add(field.value)
            case 13 where field.name.equalsLowercase("last-modified"):
                lastModified = HTTPDate.parse(field.value)
            default:
                break
            }
            return true
        }
    }

    /// The edge's defaults where the response says nothing (`edge.default_ttl_s`,
    /// `edge.stale_while_revalidate_s`, `edge.stale_if_error_s`).
    struct Defaults: Sendable, Equatable {
        var ttlSeconds: Int64 = 300
        var staleWhileRevalidateSeconds: Int64 = 0
        var staleIfErrorSeconds: Int64 = 86_400
    }

    /// How long the object may be served from `now` (Unix ms), following RFC 9111 §4.2.1 for a
    /// shared cache: s-maxage, then max-age, then Expires − Date, then the default. no-store,
    /// private and no-cache make it stale at once; must-revalidate and no-cache allow no stale use.
    func freshness(now: Int64, defaults: Defaults) -> ObjectFreshness {
        let control = cacheControl
        var lifetime: Int64
        if !control.isStorable || control.noCache {
            lifetime = 0
        } else if let given = control.lifetime {
            lifetime = given * 1000
        } else if expiresInvalid {
            lifetime = 0
        } else if let expires {
            lifetime = max(0, (expires - (date ?? now / 1000)) * 1000)
        } else {
            lifetime = defaults.ttlSeconds * 1000
        }
        let strict = control.mustRevalidate || control.noCache || !control.isStorable
        let swr = strict ? 0 : (control.staleWhileRevalidate ?? defaults.staleWhileRevalidateSeconds) * 1000
        let sie = strict ? 0 : (control.staleIfError ?? defaults.staleIfErrorSeconds) * 1000
        let freshUntil = now + max(0, lifetime - age * 1000)
        return ObjectFreshness(
            freshUntil: freshUntil, staleWhileRevalidateUntil: freshUntil + swr, staleIfErrorUntil: freshUntil + sie,
            etag: etag, lastModified: lastModified)
    }
}
