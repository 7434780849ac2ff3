import Foundation
import MarqueeConsole
import NIOHTTP1

/// `marquee loadtest --api BASE --title ID`: each viewer signs in and starts a real playback
/// session through the platform's API, then plays that session's signed URL, so the gateway's
/// tokens, billing and analytics see real sessions; the sessions are ended after the run, as a
/// player ends its session when it closes.
struct LoadtestSessions {
    struct Account: Sendable {
        var email: String
        var password: String
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The sessions that started, in viewer order, and what refused the others.
    struct Started: Sendable {
        var urls: [String] = []
        var ids: [String] = []
        /// The account each session belongs to.
        var accounts: [Int] = []
        /// "status detail" → how many.
        var refused: [String: Int] = [:]
    }

    let api: DevAPI
    let title: String

    /// Sessions one account may hold at once on a default deployment (`billing.max_sessions_per_viewer`).
    static let sessionsPerAccount = 3

    /// `email:password` per line; blank lines and `#` comments skipped.
    static func accounts(file: String) throws -> [Account] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw Failure(description: "cannot read --accounts \(file)") }
        var found: [Account] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, line.index(after: colon) != line.endIndex else {
                throw Failure(description: "\(file) line \(number + 1): expected email:password")
            }
            found.append(Account(email: String(line[..<colon]), password: String(line[line.index(after: colon)...])))
        }
        guard !found.isEmpty else { throw Failure(description: "\(file) lists no accounts (email:password per line)") }
        return found
    }

    /// Registers `count` new viewer accounts for this run.
    func register(count: Int) async throws -> [Account] {
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        var made: [Account] = []
        for k in 0..<count {
            let account = Account(email: "loadtest-\(run)-\(k)@loadtest.invalid", password: "lt-" + UUID().uuidString)
            let reply = try await api.send(.POST, "/api/auth/register", json: ["email": account.email, "password": account.password])
            guard reply.status == .created else {
                let detail = reply.string("detail") ?? "\(reply.status.code)"
                throw Failure(
                    description: "registering viewer account \(k + 1) of \(count) answered \(reply.status.code): \(detail). "
                        + "Registrations are limited per address: pass --accounts FILE (email:password per line) with \(count) accounts or more")
            }
            made.append(account)
        }
        return made
    }

    /// Signs every account in and, with `deposit` > 0, credits its wallet once per run (where
    /// self-service deposits are allowed, as in `marquee dev`). Returns the access tokens.
    func signIn(_ accounts: [Account], deposit: Int, currency: String) async throws -> [String] {
        try await withThrowingTaskGroup(of: (Int, String).self) { group in
            var tokens = [String](repeating: "", count: accounts.count)
            var next = 0
            func add() {
                let k = next
                next += 1
                group.addTask {
                    let token: String
                    do {
                        token = try await api.signIn(accounts[k].email, accounts[k].password)
                    } catch {
                        throw Failure(description: "signing in \(accounts[k].email): \(error)")
                    }
                    if deposit > 0 {
                        let reply = try await api.send(
                            .POST, "/api/billing/deposits", token: token, json: ["amount": deposit, "currency": currency],
                            headers: [("Idempotency-Key", "loadtest-\(accounts[k].email)-\(UUID().uuidString)")])
                        guard reply.status == .created || reply.status == .ok else {
                            throw Failure(description: "--deposit for \(accounts[k].email) answered \(reply.status.code): \(reply.string("detail") ?? "")")
                        }
                    }
                    return (k, token)
                }
            }
            for _ in 0..<min(16, accounts.count) { add() }
            while let (k, token) = try await group.next() {
                tokens[k] = token
                if next < accounts.count { add() }
            }
            return tokens
        }
    }

    /// Starts one session per viewer (viewer n on account n mod the accounts), 16 at a time.
    func start(viewers: Int, tokens: [String], dash: Bool) async -> Started {
        var answers = [(url: String, id: String)?](repeating: nil, count: viewers)
        var started = Started()
        await withTaskGroup(of: (Int, Result<(String, String), Failure>).self) { group in
            var next = 0
            func add() {
                let n = next
                next += 1
                group.addTask {
                    do {
                        let reply = try await api.send(.POST, "/api/playback/sessions", token: tokens[n % tokens.count], json: ["title_id": title])
                        guard reply.status == .created, let id = reply.string("id"), let url = reply.string(dash ? "dash_url" : "hls_url") else {
                            return (n, .failure(Failure(description: "\(reply.status.code) \(reply.string("detail") ?? "")")))
                        }
                        return (n, .success((url, id)))
                    } catch {
                        return (n, .failure(Failure(description: "no answer: \(error)")))
                    }
                }
            }
            for _ in 0..<min(16, viewers) { add() }
            while let (n, result) = await group.next() {
                switch result {
                case .success(let (url, id)): answers[n] = (url, id)
                case .failure(let failure): started.refused[failure.description, default: 0] += 1
                }
                if next < viewers { add() }
            }
        }
        for (n, answer) in answers.enumerated() {
            guard let answer else { continue }
            started.urls.append(answer.url)
            started.ids.append(answer.id)
            started.accounts.append(n % tokens.count)
        }
        return started
    }

    /// Ends the sessions (DELETE, as a closing player; signing in again if the token expired
    /// during the run); returns how many did not end.
    func end(_ started: Started, accounts: [Account], tokens: [String]) async -> Int {
        await withTaskGroup(of: Bool.self) { group in
            var next = 0
            var failed = 0
            func add() {
                let k = next
                next += 1
                group.addTask {
                    let path = "/api/playback/sessions/\(started.ids[k])"
                    let account = accounts[started.accounts[k]]
                    var reply = try? await api.send(.DELETE, path, token: tokens[started.accounts[k]])
                    if reply?.status == .unauthorized, let fresh = try? await api.signIn(account.email, account.password) {
                        reply = try? await api.send(.DELETE, path, token: fresh)
                    }
                    return reply?.status == .noContent
                }
            }
            for _ in 0..<min(16, started.ids.count) { add() }
            while let ended = await group.next() {
                if !ended { failed += 1 }
                if next < started.ids.count { add() }
            }
            return failed
        }
    }
}
