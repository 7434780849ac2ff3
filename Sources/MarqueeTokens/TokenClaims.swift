import MarqueeHTTP

/// What a URL token grants: a key id, a validity window, a path scope, and optionally a session
/// and a client address block. `docs/url-token.md` specifies the wire form.
public struct TokenClaims: Sendable, Equatable {
    public var keyID: String
    /// Unix seconds after which the token is refused with 410.
    public var expires: Int64
    /// Unix seconds before which the token is refused.
    public var notBefore: Int64?
    /// A decoded path prefix starting with `/`. `/titles/a/` covers everything under the folder;
    /// `/titles/a` covers that path and everything under `/titles/a/` (never `/titles/ab`).
    public var scope: String
    public var session: String?
    public var client: CIDR?

    public init(keyID: String, expires: Int64, notBefore: Int64? = nil, scope: String, session: String? = nil, client: CIDR? = nil) {
        self.keyID = keyID
        self.expires = expires
        self.notBefore = notBefore
        self.scope = scope
        self.session = session
        self.client = client
    }

    /// The claim string the payload encodes: fields in this fixed order, optional ones omitted.
    public var canonicalString: String {
        var s = "k=\(keyID)&e=\(expires)"
        if let notBefore { s += "&nb=\(notBefore)" }
        s += "&s=\(scope)"
        if let session { s += "&sid=\(session)" }
        if let client { s += "&ip=\(client)" }
        return s
    }

    /// Checks every field against the rules a verifier applies, with a message naming the field.
    public func validate() throws(TokenKeyError) {
        guard Self.isValidKeyID(keyID) else { throw TokenKeyError("key id must be 1-64 characters of A-Z a-z 0-9 _ -") }
        guard expires > 0 else { throw TokenKeyError("expiry must be a positive Unix time") }
        if let notBefore, notBefore < 0 || notBefore >= expires {
            throw TokenKeyError("not-before must be a Unix time before the expiry")
        }
        guard Self.isValidScope(Array(scope.utf8)) else {
            throw TokenKeyError(
                "scope \"\(scope)\" must be a path starting with /, without '&', '%', '//', '.' or '..' segments or control characters, at most 512 bytes")
        }
        if let session, !Self.isValidSession(Array(session.utf8)) {
            throw TokenKeyError("session id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        }
    }

    public static func isValidKeyID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        return !bytes.isEmpty && bytes.count <= TokenKeyRing.maximumKeyIDBytes && bytes.allSatisfy(isKeyIDByte)
    }

    @inline(__always) static func isKeyIDByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default: return false
        }
    }

    @inline(__always) static func isSessionByte(_ b: UInt8) -> Bool {
        isKeyIDByte(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: ":")
    }

    static func isValidSession(_ bytes: some Collection<UInt8>) -> Bool {
        !bytes.isEmpty && bytes.count <= 128 && bytes.allSatisfy(isSessionByte)
    }

    /// A scope is a normalised absolute path: what a decoded request path can be compared with.
    static func isValidScope(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.first == UInt8(ascii: "/"), bytes.count <= 512 else { return false }
        var segmentStart = 1
        for i in 0...bytes.count {
            let b = i < bytes.count ? bytes[i] : UInt8(ascii: "/")
            if b < 0x20 || b == 0x7F || b == UInt8(ascii: "&") || b == UInt8(ascii: "%") || b == UInt8(ascii: "\\") { return false }
            if b == UInt8(ascii: "/") && i > 0 {
                let length = i - segmentStart
                if length == 0 && i < bytes.count { return false }  // "//"
                if length == 1 && bytes[segmentStart] == UInt8(ascii: ".") { return false }
                if length == 2 && bytes[segmentStart] == UInt8(ascii: ".") && bytes[segmentStart + 1] == UInt8(ascii: ".") { return false }
                segmentStart = i + 1
            }
        }
        return true
    }

    static func isValidScope(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { isValidScope($0) }
    }
}
