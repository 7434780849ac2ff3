import MarqueeHTTP
import MarqueePolicy

/// The catalog's per-title rules on the media path `titles/<titleId>/...`, after the token check:
/// unknown (404), unpublished (404), outside its availability window (403), or outside its
/// countries (451); 503 with Retry-After until the catalog's first answer. Paths outside
/// `titles/` are not concerned. Static geo rules from configuration still apply after this.
extension EventLoop {
    mutating func admitTitle(_ slot: Int32, _ credentials: Credentials, _ policy: AccessPolicy?, origin: UnsafeRawBufferPointer) -> Admission {
        guard let titleRules, let titleID = Self.titleID(credentials.relativePath) else { return .proceed }
        let client = credentials.client
        let unknownCountry = policy?.settings.geoUnknownCountry ?? .allow
        let geo = policy?.geo
        var looked = CountryCode.unknown
        let decision = titleRules.withCurrent { table in
            table.decide(titleID: titleID, nowSeconds: dateSecond, unknownCountry: unknownCountry) {
                guard let geo else { return .unknown }
                looked = geo.withDatabases { database, _ in database.lookup(client).country }
                return looked
            }
        }
        // The lookup made for the title's countries, if one was: the record's country.
        if looked != .unknown { media.country = looked.rawValue }
        metrics.countPolicy(PolicyCounter.title(decision))
        switch decision {
        case .allowed:
            return .proceed
        case .rulesNotLoaded:
            respondWithError(slot, HTTPError(.serviceUnavailable, "title rules not loaded yet, retry"), close: false, origin: origin)
        case .noSuchTitle:
            respondWithError(slot, HTTPError(.notFound, "no such title"), close: false, origin: origin)
        case .notPublished:
            respondWithError(slot, HTTPError(.notFound, "title not available"), close: false, origin: origin)
        case .notYetAvailable:
            respondWithError(slot, HTTPError(.forbidden, "title not available yet"), close: false, origin: origin)
        case .noLongerAvailable:
            respondWithError(slot, HTTPError(.forbidden, "title no longer available"), close: false, origin: origin)
        case .geoDenied(let denial):
            let length = denial.writeMessage(into: messageScratch, capacity: Self.messageScratchBytes - 1)
            messageScratch.storeBytes(of: 0x0A, toByteOffset: length, as: UInt8.self)
            respondRefusal(
                slot, .unavailableForLegalReasons, body: UnsafeRawBufferPointer(start: messageScratch, count: length + 1), origin: origin)
        }
        return .answered
    }

    /// `<titleId>` of a decoded relative path `titles/<titleId>[/...]`.
    static func titleID(_ relativePath: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let prefix: StaticString = "titles/"
        let n = prefix.utf8CodeUnitCount
        guard relativePath.count > n, UnsafeRawBufferPointer(start: prefix.utf8Start, count: n).elementsEqual(relativePath[0..<n]) else {
            return nil
        }
        var end = n
        while end < relativePath.count && relativePath[end] != 0x2F { end += 1 }
        return UnsafeRawBufferPointer(rebasing: relativePath[n..<end])
    }
}
