import FoundationEssentials

/// The catalog's `GET /api/catalog/access-rules` answer:
/// `{"version":42,"titles":[{"id":"01hx...","status":"published","geo":{"mode":"deny","countries":["GB"]},"available_from":1700000000,"available_until":null}]}`.
/// Decoded off the request path (the feed's thread) and checked field by field, so a malformed
/// document is refused as a whole with a reason, and the gateway keeps the rules it had.
public enum AccessRulesDocument {
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Most titles one document may carry, and the longest id (bytes).
    public static let maxTitles = 1_000_000
    public static let maxIDBytes = 128

    private struct Document: Decodable {
        var version: Int64
        var titles: [Title]
    }

    private struct Title: Decodable {
        var id: String
        var status: String
        var geo: Geo?
        var available_from: Int64?
        var available_until: Int64?
    }

    private struct Geo: Decodable {
        var mode: String
        var countries: [String]
    }

    /// Decodes and validates `data`.
    /// - Throws: `Invalid` saying what is wrong (not JSON, a missing field, a bad id, mode or country).
    public static func decode(_ data: [UInt8]) throws(Invalid) -> (version: Int64, rules: [TitleRule]) {
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(data))
        } catch {
            throw Invalid(description: "not an access-rules document: \(error)")
        }
        guard document.titles.count <= maxTitles else { throw Invalid(description: "more than \(maxTitles) titles") }
        var rules: [TitleRule] = []
        rules.reserveCapacity(document.titles.count)
        for title in document.titles {
            let id = title.id.utf8
            guard !id.isEmpty, id.count <= maxIDBytes, id.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x2F && $0 != 0x25 }) else {
                throw Invalid(description: "title id \(title.id.debugDescription) must be 1-\(maxIDBytes) printable ASCII characters without / or %")
            }
            var geo: TitleRule.GeoMode?
            if let g = title.geo {
                var codes: [CountryCode] = []
                for text in g.countries {
                    guard let code = CountryCode(text) else {
                        throw Invalid(description: "title \(title.id): \(text.debugDescription) is not a two-letter country code")
                    }
                    codes.append(code)
                }
                switch g.mode {
                case "allow": geo = .allow(codes)
                case "deny": geo = .deny(codes)
                default: throw Invalid(description: "title \(title.id): geo mode must be allow or deny, got \(g.mode.debugDescription)")
                }
            }
            rules.append(
                TitleRule(
                    id: title.id, isPublished: title.status == "published", availableFrom: title.available_from,
                    availableUntil: title.available_until, geo: geo))
        }
        return (document.version, rules)
    }
}
