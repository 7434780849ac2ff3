/// Why a session was revoked; decides the status the gateway answers with.
public enum RevocationReason: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The account ran out of funds: 402 Payment Required, so clients can tell "top up" from "banned".
    case funds = 1
    /// Anything else (abuse, logout, key leak): 403 Forbidden.
    case other = 2

    /// Parses the wire and CLI spelling, `funds` or `other` (exactly, lower case).
    public init?(_ text: some StringProtocol) {
        switch text {
        case "funds": self = .funds
        case "other": self = .other
        default: return nil
        }
    }

    /// The wire spelling.
    public var description: String { self == .funds ? "funds" : "other" }

    /// The HTTP status a request on a session revoked for this reason gets.
    public var statusCode: Int { self == .funds ? 402 : 403 }
}
