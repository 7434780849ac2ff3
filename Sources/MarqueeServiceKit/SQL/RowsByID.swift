/// `SELECT <columns> FROM <table> WHERE <key> IN (ids)` (`key` is `id` by default) in few
/// statements: chunks of 500 ids on SQLite, of 30,000 on PostgreSQL (below its 65,535 parameters a
/// statement). On PostgreSQL `lock` adds `ORDER BY <key> FOR UPDATE` and the chunks go in key
/// order, so the rows are locked in one order across the whole set: the order session starts and
/// ends take their locks in too. SQLite's transactions hold the whole database already.
public func rowsByID(
    _ columns: String, from table: String, key: String = "id", ids: some Collection<String>, _ executor: any SQLExecutor, lock: Bool = false
) async throws -> [SQLRow] {
    let postgres = executor.dialect == .postgres
    let ids = lock && postgres ? ids.sorted() : Array(ids)
    let chunk = postgres ? 30_000 : 500
    let suffix = lock && postgres ? " ORDER BY \(key) FOR UPDATE" : ""
    var rows: [SQLRow] = []
    var start = 0
    while start < ids.count {
        let part = ids[start..<min(ids.count, start + chunk)]
        rows += try await executor.query(
            "SELECT \(columns) FROM \(table) WHERE \(key) IN (\(sqlPlaceholders(count: part.count)))\(suffix)", part.map(SQLValue.text))
        start += part.count
    }
    return rows
}
