/// `$first, $first+1, …`: the numbered parameters of an `IN (…)` list or of one row of a multi-row
/// insert, in the dialect-neutral spelling every SQL statement here uses.
public func sqlPlaceholders(from first: Int = 1, count: Int) -> String {
    (first..<(first + count)).map { "$\($0)" }.joined(separator: ", ")
}
