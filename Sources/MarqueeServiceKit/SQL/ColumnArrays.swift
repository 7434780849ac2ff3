/// Many rows for one PostgreSQL statement, bound as one array per column and read back with
/// `unnest`: `INSERT INTO t (a, b) SELECT ... FROM unnest($1::text[], $2::bigint[]) ...`. The
/// statement's text, and so its parsing and planning, stay the same size however many rows go in;
/// with thousands of `VALUES` tuples those were most of PostgreSQL's time. A nullable column gets
/// a second array of null flags.
public struct ColumnArrays: Sendable {
    public enum Kind: Sendable { case text, integer }

    public let columns: [(name: String, kind: Kind)]
    private var texts: [[String]]
    private var integers: [[Int64]]
    private var nulls: [[Int64]]
    private var anyNull: [Bool]
    public private(set) var count = 0

    public init(_ columns: [(name: String, kind: Kind)]) {
        self.columns = columns
        texts = Array(repeating: [], count: columns.count)
        integers = Array(repeating: [], count: columns.count)
        nulls = Array(repeating: [], count: columns.count)
        anyNull = Array(repeating: false, count: columns.count)
    }

    public mutating func reserveCapacity(_ rows: Int) {
        for (i, column) in columns.enumerated() {
            switch column.kind {
            case .text: texts[i].reserveCapacity(rows)
            case .integer: integers[i].reserveCapacity(rows)
            }
        }
    }

    /// Appends a row: one value per column, in order (text or NULL for text columns, integer or
    /// NULL for integer ones).
    public mutating func append(_ row: [SQLValue]) {
        precondition(row.count == columns.count, "a row of \(row.count) values for \(columns.count) columns")
        for (i, value) in row.enumerated() {
            var isNull = false
            switch (columns[i].kind, value) {
            case (.text, .text(let s)): texts[i].append(s)
            case (.integer, .integer(let v)): integers[i].append(v)
            case (.text, .integer(let v)): texts[i].append(String(v))
            case (.text, _):
                texts[i].append("")
                isNull = true
            case (.integer, _):
                integers[i].append(0)
                isNull = true
            }
            if isNull && !anyNull[i] {
                // The flags of the rows before, none of them null.
                anyNull[i] = true
                nulls[i] = Array(repeating: 0, count: count)
            }
            if anyNull[i] { nulls[i].append(isNull ? 1 : 0) }
        }
        count += 1
    }

    /// `SELECT <one expression per column> FROM unnest(...) AS rows(...)`, its parameters numbered
    /// from `first`, and the binds.
    public func select(first: Int = 1) -> (sql: String, binds: [SQLValue]) {
        var binds: [SQLValue] = []
        var arguments: [String] = []
        var names: [String] = []
        var expressions: [String] = []
        for (i, column) in columns.enumerated() {
            let name = "c\(i)"
            switch column.kind {
            case .text:
                binds.append(.textArray(texts[i]))
                arguments.append("$\(first + binds.count - 1)::text[]")
            case .integer:
                binds.append(.integerArray(integers[i]))
                arguments.append("$\(first + binds.count - 1)::bigint[]")
            }
            names.append(name)
            if anyNull[i] {
                binds.append(.integerArray(nulls[i]))
                arguments.append("$\(first + binds.count - 1)::bigint[]")
                names.append("n\(i)")
                expressions.append("CASE WHEN n\(i) = 1 THEN NULL ELSE \(name) END")
            } else {
                expressions.append(name)
            }
        }
        return (
            "SELECT \(expressions.joined(separator: ", ")) FROM unnest(\(arguments.joined(separator: ", "))) AS rows(\(names.joined(separator: ", ")))",
            binds
        )
    }
}
