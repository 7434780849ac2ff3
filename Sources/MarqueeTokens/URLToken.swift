import MarqueeHTTP

/// Minting URL tokens and the signed URLs that carry them (`marquee sign`, the playback API).
/// Verification, on the request path, is `TokenVerifier`.
public enum URLToken {
    /// The version prefix; it is part of the signed bytes.
    public static let versionPrefix = "v1."

    public enum Placement: String, Sendable, CaseIterable {
        /// `/t/<token>/titles/...`: relative URLs in playlists inherit the token.
        case path
        /// `...?token=<token>`: the gateway rewrites playlists and manifests so children carry it.
        case query
    }

    /// `v1.<payload>.<mac>` for `claims`, signed with the ring's key named by `claims.keyID`.
    public static func mint(_ claims: TokenClaims, keys: TokenKeyRing) throws(TokenKeyError) -> String {
        try claims.validate()
        let signed = versionPrefix + Base64URL.encode(Array(claims.canonicalString.utf8))
        guard let mac = keys.mac(keyID: claims.keyID, Array(signed.utf8)) else {
            throw TokenKeyError("no key with id \"\(claims.keyID)\"")
        }
        return signed + "." + Base64URL.encode(mac)
    }

    /// The signed form of `path` (a path starting with `/`, possibly with a query): `base` +
    /// `/t/<token>` + path, or `base` + path + `?token=` / `&token=`.
    public static func signedURL(base: String, path: String, token: String, placement: Placement) -> String {
        var base = base
        while base.hasSuffix("/") { base.removeLast() }
        switch placement {
        case .path:
            return base + "/t/" + token + path
        case .query:
            return base + path + (path.contains("?") ? "&" : "?") + "token=" + token
        }
    }
}
