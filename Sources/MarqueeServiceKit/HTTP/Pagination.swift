import Foundation

/// `limit` query parameter: 1...100, default 20.
public func pageLimit(_ text: String?) throws(ServiceError) -> Int {
    guard let text else { return 20 }
    guard let value = Int(text), (1...100).contains(value) else { throw .invalid("limit", "must be an integer from 1 to 100") }
    return value
}

/// Opaque page cursors: the base64url of a small JSON object holding the last row's sort key.
/// Clients must not build them; a cursor that does not decode is a 422 naming `cursor`.
public enum PageCursor {
    public static func encode<T: Encodable>(_ value: T) -> String {
        Base64URL.encode((try? JSONEncoder().encode(value)) ?? Data())
    }

    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws(ServiceError) -> T {
        guard text.utf8.count <= 512, let data = Base64URL.decode(text), let value = try? JSONDecoder().decode(T.self, from: data) else {
            throw .invalid("cursor", "is not a cursor this service issued")
        }
        return value
    }
}

/// A page of a list: `{"items": [...], "next_cursor": "..." | null}`; the cursor is always
/// written, null on the last page.
public struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
    public let items: [Item]
    public let next_cursor: String?

    public init(items: [Item], next_cursor: String?) {
        self.items = items
        self.next_cursor = next_cursor
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(items, forKey: .items)
        try c.encode(next_cursor, forKey: .next_cursor)
    }

    enum CodingKeys: String, CodingKey { case items, next_cursor }
}
