/// One result row, columns by name. Accessors throw `DatabaseError.column` naming the column when
/// it is missing or holds another type, so a schema mistake is reported, not crashed on.
public struct SQLRow: Sendable {
    public let values: [String: SQLValue]

    public init(_ values: [String: SQLValue]) { self.values = values }

    public subscript(_ column: String) -> SQLValue { values[column] ?? .null }

    public func int(_ column: String) throws(DatabaseError) -> Int64 {
        guard let value = optionalInt(column) else { throw .column(column, "expected an integer, found \(self[column])") }
        return value
    }

    public func optionalInt(_ column: String) -> Int64? {
        switch self[column] {
        case .integer(let v): v
        case .real(let v): Int64(exactly: v)
        case .text(let s): Int64(s)
        default: nil
        }
    }

    public func bool(_ column: String) throws(DatabaseError) -> Bool { try int(column) != 0 }

    public func string(_ column: String) throws(DatabaseError) -> String {
        guard let value = optionalString(column) else { throw .column(column, "expected text, found \(self[column])") }
        return value
    }

    public func optionalString(_ column: String) -> String? {
        switch self[column] {
        case .text(let s): s
        case .integer(let v): String(v)
        default: nil
        }
    }

    public func bytes(_ column: String) throws(DatabaseError) -> [UInt8] {
        switch self[column] {
        case .blob(let b): return b
        case .text(let s): return Array(s.utf8)
        default: throw .column(column, "expected bytes, found \(self[column])")
        }
    }
}
