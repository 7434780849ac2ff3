import Foundation
import MarqueeServiceKit

/// The auth service's settings (documented key by key in `config/README.md`, section `auth`).
public struct AuthSettings: Sendable {
    /// `auth.listen`: HOST:PORT (default 127.0.0.1:8081).
    public var listen = "127.0.0.1:8081"
    /// `auth.database`: a database URL (default `sqlite://<data>/auth.db`).
    public var database = "sqlite://var/auth.db"
    /// `auth.issuer`: the `iss` claim (default `marquee-auth`).
    public var issuer = "marquee-auth"
    /// `auth.access_token_ttl_s`: access token lifetime in seconds (default 900).
    public var accessTokenLifetime: TimeInterval = 900
    /// `auth.refresh_token_ttl_s`: refresh token lifetime in seconds (default 30 days).
    public var refreshTokenLifetime: TimeInterval = 30 * 24 * 3600
    /// `auth.bcrypt_cost`: bcrypt cost factor, 12 or more in production (default 12).
    public var bcryptCost: UInt8 = 12
    /// `auth.trusted_proxies`: peers whose X-Forwarded-For is believed (default loopback).
    public var trustedProxies: Set<String> = ["127.0.0.1", "::1"]
    /// `auth.key_encryption_key_file`: the file holding the key the signing keys are sealed with
    /// in the database (32 bytes as 64 hex characters). Required to serve; no default.
    public var keyEncryptionKeyFile: String?
    /// `auth.key_rotation_days` and `auth.key_publish_lead_s` (defaults 30 days, 600 s).
    var keys = SigningKeys.Settings()
    /// `auth.throttle.*` (sign-ins and registrations).
    var throttle = LoginThrottle.Settings()

    public init() {}

    /// Key rotation period and how long a new key is published before it signs.
    public mutating func setKeyRotation(every interval: TimeInterval, publishLead: TimeInterval) {
        keys.rotationInterval = Int64(interval * 1000)
        keys.publishLead = Int64(publishLead * 1000)
    }

    /// Failures before an account is blocked, and the first block's length.
    public mutating func setAccountThrottle(failures: Int, blockSeconds: Int) {
        throttle.accountFailures = Int64(failures)
        throttle.accountBlock = Int64(blockSeconds) * 1000
    }

    /// Failed sign-ins from one client address (an IPv6 /64) before it is blocked, and the block's length.
    public mutating func setAddressThrottle(failures: Int, blockSeconds: Int) {
        throttle.addressFailures = Int64(failures)
        throttle.addressBlock = Int64(blockSeconds) * 1000
    }

    /// Registrations one client address (an IPv6 /64) may make within `windowSeconds`; past them
    /// it may not register for `windowSeconds`.
    public mutating func setRegistrationThrottle(perAddress registrations: Int, windowSeconds: Int) {
        throttle.registrations = Int64(registrations)
        throttle.registrationWindow = Int64(windowSeconds) * 1000
    }
}
