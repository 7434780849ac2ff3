/// What a signed-in user may do. Ordered: each role can do what the ones below it can.
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    /// Browses published titles and plays them.
    case viewer
    /// Manages titles: creates, edits, publishes, withdraws; sees drafts.
    case publisher
    /// Everything, including user management.
    case admin

    var rank: Int {
        switch self {
        case .viewer: 0
        case .publisher: 1
        case .admin: 2
        }
    }

    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
}
