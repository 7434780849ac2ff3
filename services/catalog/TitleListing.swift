import Foundation
import MarqueeServiceKit

/// The public listing's query: filters, full-text search, keyset pagination over a stable order.
struct TitleListing: Sendable {
    enum Sort: String, Sendable, CaseIterable {
        case newest = "-created_at"
        case oldest = "created_at"
        case name = "name"
        case nameDescending = "-name"
        case year = "year"
        case yearDescending = "-year"

        var column: String {
            switch self {
            case .newest, .oldest: "created_at"
            case .name, .nameDescending: "name"
            case .year, .yearDescending: "COALESCE(year, 0)"
            }
        }
        var descending: Bool { rawValue.hasPrefix("-") }
    }

    /// Where the previous page ended: its last row's sort value and id.
    struct Cursor: Codable {
        let s: String
        let v: String?
        let n: Int64?
        let id: String
    }

    var search: String?
    var genre: String?
    var statuses: [TitleStatus]
    /// Viewers see only titles inside their availability window.
    var onlyAvailableAt: Int64?
    var sort: Sort = .newest
    var limit = 20
    var after: Cursor?

    /// Search terms: letters and digits only, lowercased, at most 8; each matches as a prefix, all
    /// must match. Anything else in `q` separates terms, so no input can reach the engines'
    /// query syntax.
    static func terms(_ q: String) -> [String] {
        fold(q).split { !($0.isLetter || $0.isNumber) }.prefix(8).map { String($0.prefix(64)) }
    }

    /// Lowercase without diacritics (Saldaña → saldana), for indexing and for queries alike.
    static func fold(_ text: String) -> String {
        text.folding(options: [.caseInsensitive, .diacriticInsensitive, .widthInsensitive], locale: nil).lowercased()
    }

    func sql(dialect: SQLDialect) -> (String, [SQLValue]) {
        var conditions: [String] = []
        var binds: [SQLValue] = []
        func bind(_ value: SQLValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        if !statuses.isEmpty {
            conditions.append("status IN (\(statuses.map { bind(.text($0.rawValue)) }.joined(separator: ", ")))")
        }
        if let now = onlyAvailableAt {
            let p = bind(.integer(now))
            conditions.append("(available_from IS NULL OR available_from <= \(p)) AND (available_until IS NULL OR available_until > \(p))")
        }
        if let genre {
            conditions.append("id IN (SELECT title_id FROM title_genres WHERE genre = \(bind(.text(genre))))")
        }
        if let search {
            let terms = Self.terms(search)
            if terms.isEmpty {
                conditions.append("1 = 0")
            } else {
                switch dialect {
                case .postgres:
                    let query = terms.map { "\($0):*" }.joined(separator: " & ")
                    conditions.append("search @@ to_tsquery('simple', \(bind(.text(query))))")
                case .sqlite:
                    let query = terms.map { "\"\($0)\"*" }.joined(separator: " ")
                    conditions.append("rowid IN (SELECT rowid FROM titles_fts WHERE titles_fts MATCH \(bind(.text(query))))")
                }
            }
        }
        let comparison = sort.descending ? "<" : ">"
        if let after {
            let value: SQLValue = sort == .name || sort == .nameDescending ? .text(after.v ?? "") : .integer(after.n ?? 0)
            let v = bind(value)
            let id = bind(.text(after.id))
            conditions.append("(\(sort.column) \(comparison) \(v) OR (\(sort.column) = \(v) AND id \(comparison) \(id)))")
        }
        let direction = sort.descending ? "DESC" : "ASC"
        var sql = "SELECT \(TitleRecord.columns) FROM titles"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY \(sort.column) \(direction), id \(direction) LIMIT \(limit + 1)"
        return (sql, binds)
    }

    func cursor(after title: TitleRecord) -> Cursor {
        switch sort {
        case .newest, .oldest: Cursor(s: sort.rawValue, v: nil, n: title.createdAt, id: title.id)
        case .name, .nameDescending: Cursor(s: sort.rawValue, v: title.name, n: nil, id: title.id)
        case .year, .yearDescending: Cursor(s: sort.rawValue, v: nil, n: Int64(title.year ?? 0), id: title.id)
        }
    }
}
