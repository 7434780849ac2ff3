import COpenSSL
import MarqueeHTTP

/// Why a token was refused. Expired tokens get 410 (the player should ask for a new URL);
/// everything else 403. A forged token is refused as forged even when its claims are expired:
/// the signature is checked before any claim is believed.
public enum TokenRefusal: UInt8, Sendable, CaseIterable {
    case missing, malformed, unknownKey, badSignature, expired, notYetValid, outOfScope, wrongAddress

    public var isExpiry: Bool { self == .expired }

    /// The body of the refusal: short, says why, never echoes the token.
    public var reason: StaticString {
        switch self {
        case .missing: "a signed URL is required"
        case .malformed: "malformed token"
        case .unknownKey: "token signed with an unknown key"
        case .badSignature: "token signature does not match"
        case .expired: "token expired; request a new URL"
        case .notYetValid: "token not valid yet"
        case .outOfScope: "token does not cover this path"
        case .wrongAddress: "token issued for another client address"
        }
    }

    public var metricLabel: StaticString {
        switch self {
        case .missing: "missing"
        case .malformed: "malformed"
        case .unknownKey: "unknown_key"
        case .badSignature: "bad_signature"
        case .expired: "expired"
        case .notYetValid: "not_yet_valid"
        case .outOfScope: "out_of_scope"
        case .wrongAddress: "wrong_address"
        }
    }
}

public enum TokenCheck: Sendable, Equatable {
    /// The token is good for this request. `session` is where the session id lies in the scratch
    /// buffer (count 0 when the token names none); it stays valid until the next verification.
    case granted(sessionStart: Int, sessionCount: Int)
    case refused(TokenRefusal)
}

/// Verifies `v1.<payload>.<mac>` tokens on the request path: no allocation, no locks; one
/// base64url decode, one HMAC (the key's pad states are precomputed), a constant-time compare.
public enum TokenVerifier {
    /// Longest token accepted; the scratch buffer must hold this many bytes.
    public static let maximumTokenBytes = 1024
    static let macBytes = 32
    static let macCharacters = 43

    /// - Parameters:
    ///   - token: the token as received, before any percent-decoding (a percent-encoded token is
    ///     a different spelling and is refused).
    ///   - path: the decoded request path without its leading slash, as served.
    public static func verify(
        _ token: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer, client: IPAddress, nowSeconds: Int64, keys: TokenKeyRing,
        scratch: UnsafeMutableRawPointer
    ) -> TokenCheck {
        let n = token.count
        guard n > 3 + 1 + 1 + macCharacters, n <= maximumTokenBytes,
            token[0] == UInt8(ascii: "v"), token[1] == UInt8(ascii: "1"), token[2] == UInt8(ascii: "."),
            token[n - macCharacters - 1] == UInt8(ascii: ".")
        else { return .refused(.malformed) }
        let signed = UnsafeRawBufferPointer(rebasing: token[0..<(n - macCharacters - 1)])
        let payload = UnsafeRawBufferPointer(rebasing: token[3..<(n - macCharacters - 1)])
        let macText = UnsafeRawBufferPointer(rebasing: token[(n - macCharacters)...])

        // The claims, decoded into the scratch buffer; the received MAC after them.
        guard let claimsLength = Base64URL.decode(payload, into: scratch) else { return .refused(.malformed) }
        let receivedMAC = scratch + claimsLength
        guard Base64URL.decode(macText, into: receivedMAC) == macBytes else { return .refused(.malformed) }
        let claims = UnsafeRawBufferPointer(start: scratch, count: claimsLength)

        var parser = ClaimParser(claims)
        guard let keyID = parser.field("k"), !keyID.isEmpty, keyID.allSatisfy(TokenClaims.isKeyIDByte),
            let expiresText = parser.field("e"), let expires = RequestParser.decimal(expiresText)
        else { return .refused(.malformed) }
        var notBefore: Int64 = 0
        if let text = parser.optionalField("nb") {
            guard let value = RequestParser.decimal(text) else { return .refused(.malformed) }
            notBefore = value
        }
        guard let scope = parser.field("s"), TokenClaims.isValidScope(scope) else { return .refused(.malformed) }
        var sessionStart = 0
        var sessionCount = 0
        if let session = parser.optionalField("sid") {
            guard TokenClaims.isValidSession(session) else { return .refused(.malformed) }
            sessionStart = session.baseAddress! - UnsafeRawPointer(scratch)
            sessionCount = session.count
        }
        let ip = parser.optionalField("ip")
        guard parser.atEnd else { return .refused(.malformed) }

        guard let key = keys.key(matching: keyID) else { return .refused(.unknownKey) }
        var computed = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let matches = withUnsafeMutableBytes(of: &computed) { mac -> Bool in
            let out = mac.baseAddress!.assumingMemoryBound(to: UInt8.self)
            mq_hmac_sha256(key, signed.baseAddress, signed.count, nil, 0, out)
            return mq_constant_time_equal(out, receivedMAC, macBytes) != 0
        }
        guard matches else { return .refused(.badSignature) }

        // The signature holds: now the claims can be believed.
        if nowSeconds >= expires { return .refused(.expired) }
        if nowSeconds < notBefore { return .refused(.notYetValid) }
        guard covers(scope: scope, path: path) else { return .refused(.outOfScope) }
        if let ip {
            guard let block = CIDR(parsing: ip), block.contains(client) else { return .refused(.wrongAddress) }
        }
        return .granted(sessionStart: sessionStart, sessionCount: sessionCount)
    }

    /// Whether `scope` (starting with `/`) covers `path` (without its leading slash).
    @inline(__always) static func covers(scope: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer) -> Bool {
        let prefix = UnsafeRawBufferPointer(rebasing: scope[1...])
        guard path.count >= prefix.count else { return false }
        for i in 0..<prefix.count where path[i] != prefix[i] { return false }
        // A folder scope ends with "/"; otherwise the path must end at the scope or continue with "/".
        return prefix.isEmpty || prefix.last == UInt8(ascii: "/") || path.count == prefix.count
            || path[prefix.count] == UInt8(ascii: "/")
    }
}

/// Reads `name=value` fields separated by `&`, in the order the spec fixes.
struct ClaimParser {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { position == bytes.count }

    /// The value of the next field when it is `name`, advancing past it; nil otherwise.
    mutating func optionalField(_ name: StaticString) -> UnsafeRawBufferPointer? {
        let n = name.utf8CodeUnitCount
        var p = position
        if p > 0 {
            guard p < bytes.count, bytes[p] == UInt8(ascii: "&") else { return nil }
            p += 1
        }
        guard p + n < bytes.count, bytes[p + n] == UInt8(ascii: "=") else { return nil }
        for i in 0..<n where bytes[p + i] != name.utf8Start[i] { return nil }
        let start = p + n + 1
        var end = start
        while end < bytes.count && bytes[end] != UInt8(ascii: "&") { end += 1 }
        position = end
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }

    mutating func field(_ name: StaticString) -> UnsafeRawBufferPointer? { optionalField(name) }
}
