import Crypto
import Foundation
import HTTPTypes
import HummingbirdBcrypt
import NIOConcurrencyHelpers
import NIOPosix

/// bcrypt at cost 12 (≈ 250 ms here), always on NIO's blocking thread pool so a login never stalls
/// the event loops or the cooperative executor. bcrypt reads only 72 bytes: a longer password is
/// first reduced to the base64 of its SHA-256, so every character counts.
struct PasswordHasher: Sendable {
    let cost: UInt8

    init(cost: UInt8 = 12) {
        self.cost = cost
    }

    func hash(_ password: String) async throws -> String {
        let input = Self.bcryptInput(password)
        let cost = cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(input, cost: cost) }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        let input = Self.bcryptInput(password)
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(input, hash: hash) }
    }

    /// Spends the time of one verification without an account, so "no such user" takes as long
    /// as "wrong password" and cannot be told apart by timing.
    func verifyDecoy(_ password: String) async throws {
        let decoy = try await decoyHash.value
        _ = try await verify(password, hash: decoy)
    }

    private var decoyHash: Task<String, any Error> {
        let cost = cost
        return Self.decoys.withLockedValue { decoys in
            if let task = decoys[cost] { return task }
            let task = Task { try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(UUID().uuidString, cost: cost) } }
            decoys[cost] = task
            return task
        }
    }
    private static let decoys = NIOLockedValueBox<[UInt8: Task<String, any Error>]>([:])

    static func bcryptInput(_ password: String) -> String {
        let bytes = Array(password.utf8)
        guard bytes.count > 72 else { return password }
        return "sha256:" + Data(SHA256.hash(data: bytes)).base64EncodedString()
    }
}
