import Foundation
import MarqueeHTTP
import Testing
@testable import MarqueePolicy

@Suite("Geo database reload")
struct GeoDatabaseHandleTests {
    static let address = IPAddress("192.0.2.1")!

    /// Writes a one-network database placing 192.0.2.0/24 in `country` at `path`.
    static func writeDatabase(_ country: String, to path: String) throws {
        try GeoDatabases.write(
            to: path, networks: [GeoDatabases.Network(blocks: ["192.0.2.0/24"], record: GeoDatabases.country(country))])
    }

    /// Replaces `target` the way operators should: write beside it, then rename over it.
    static func replace(_ target: String, with source: String) throws {
        guard rename(source, target) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno)!) }
    }

    @Test func unchangedFileIsNotReopened() throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("geo.mmdb").path
        try Self.writeDatabase("FR", to: path)

        let handle = try GeoDatabaseHandle(path: path)
        let first = handle.current
        let report = handle.reloadIfChanged()
        #expect(report.database == .unchanged && report.anonymousDatabase == nil)
        #expect(!report.didReload && report.messages.isEmpty)
        #expect(handle.current === first)
        #expect(handle.anonymous == nil)
        // SIGHUP: reopen even though nothing changed.
        #expect(handle.reloadIfChanged(force: true).database == .reloaded)
        #expect(handle.current !== first)
        #expect(handle.current.lookup(Self.address).country == CountryCode("FR"))
    }

    @Test func renamedReplacementIsPickedUpAndTheOldOneStaysUsable() throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("geo.mmdb").path
        let staged = directory.appendingPathComponent("geo.mmdb.new").path
        try Self.writeDatabase("FR", to: path)

        let handle = try GeoDatabaseHandle(path: path)
        let old = handle.current
        #expect(old.lookup(Self.address).country == CountryCode("FR"))

        try Self.writeDatabase("DE", to: staged)
        try Self.replace(path, with: staged)
        let report = handle.reloadIfChanged()
        #expect(report.database == .reloaded)
        #expect(report.didReload && report.errors.isEmpty)
        #expect(report.messages == ["reloaded geo database \(path)"])
        #expect(handle.current.lookup(Self.address).country == CountryCode("DE"))
        #expect(handle.withDatabases { main, _ in main.lookup(Self.address).country } == CountryCode("DE"))
        // A loop that read the old database before the swap still gets answers from it.
        #expect(old.lookup(Self.address).country == CountryCode("FR"))
        #expect(handle.retiredCount == 1)
        #expect(handle.reloadIfChanged().database == .unchanged)
    }

    @Test func corruptReplacementKeepsTheLoadedDatabase() throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("geo.mmdb").path
        let staged = directory.appendingPathComponent("geo.mmdb.new").path
        try Self.writeDatabase("FR", to: path)
        let handle = try GeoDatabaseHandle(path: path)

        try Data(repeating: 0x5A, count: 4096).write(to: URL(fileURLWithPath: staged))
        try Self.replace(path, with: staged)
        let report = handle.reloadIfChanged()
        guard case .failed(let error) = report.database else {
            Issue.record("expected a failed reload, got \(report)")
            return
        }
        #expect(error.description.contains(path))
        #expect(report.errors == [error])
        #expect(report.messages.count == 1 && report.messages[0].contains(path) && report.messages[0].contains("keeping"))
        #expect(!report.didReload)
        #expect(handle.current.lookup(Self.address).country == CountryCode("FR"))

        // Still broken: still reported, still the old database.
        #expect(handle.reloadIfChanged().errors.count == 1)

        // A good file afterwards recovers.
        try Self.writeDatabase("GB", to: staged)
        try Self.replace(path, with: staged)
        #expect(handle.reloadIfChanged().database == .reloaded)
        #expect(handle.current.lookup(Self.address).country == CountryCode("GB"))
    }

    @Test func missingFileAtReloadKeepsTheLoadedDatabase() throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("geo.mmdb").path
        try Self.writeDatabase("FR", to: path)
        let handle = try GeoDatabaseHandle(path: path)
        try FileManager.default.removeItem(atPath: path)

        let report = handle.reloadIfChanged()
        #expect(report.database == .failed(.statFailed(path: path, reason: "No such file or directory")))
        #expect(handle.current.lookup(Self.address).country == CountryCode("FR"))
    }

    @Test func openingAMissingFileFails() {
        #expect(throws: GeoError.self) { try GeoDatabaseHandle(path: "/nonexistent/geo.mmdb") }
    }

    @Test func anonymousDatabaseReloadsIndependently() throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("geo.mmdb").path
        let anonymousPath = directory.appendingPathComponent("anonymous.mmdb").path
        let staged = directory.appendingPathComponent("staged.mmdb").path
        try Self.writeDatabase("FR", to: path)
        try GeoDatabases.writeAnonymous(to: anonymousPath)

        let handle = try GeoDatabaseHandle(path: path, anonymousPath: anonymousPath)
        let vpn = IPAddress("192.0.2.200")!
        #expect(handle.anonymous?.lookup(vpn).isAnonymousVPN == true)
        let unchanged = handle.reloadIfChanged()
        #expect(unchanged.database == .unchanged && unchanged.anonymousDatabase == .unchanged)

        try GeoDatabases.write(
            to: staged, databaseType: "GeoIP2-Anonymous-IP",
            networks: [GeoDatabases.Network(blocks: ["192.0.2.0/24"], record: ["is_anonymous": true, "is_tor_exit_node": true])])
        try Self.replace(anonymousPath, with: staged)
        let reloaded = handle.reloadIfChanged()
        #expect(reloaded.database == .unchanged && reloaded.anonymousDatabase == .reloaded)
        #expect(reloaded.messages == ["reloaded geo database \(anonymousPath)"])
        let flags = handle.withDatabases { _, anonymous in anonymous?.lookup(vpn) }
        #expect(flags?.isTorExitNode == true && flags?.isAnonymousVPN == false)
    }

    @Test func retiredDatabasesAreReleasedAfterTheDelay() async throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("geo.mmdb").path
        let staged = directory.appendingPathComponent("geo.mmdb.new").path
        try Self.writeDatabase("FR", to: path)

        let handle = try GeoDatabaseHandle(path: path, retirementDelay: .milliseconds(50))
        weak let old = handle.current
        try Self.writeDatabase("DE", to: staged)
        try Self.replace(path, with: staged)
        #expect(handle.reloadIfChanged().database == .reloaded)
        #expect(handle.retiredCount == 1)
        #expect(old != nil)

        let deadline = ContinuousClock.now + .seconds(10)
        while handle.retiredCount > 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            _ = handle.reloadIfChanged()
        }
        #expect(handle.retiredCount == 0)
        #expect(old == nil)
    }

    @Test func lookupsDuringReloadsAlwaysSeeADatabase() async throws {
        let directory = try GeoDatabases.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("geo.mmdb").path
        let france = directory.appendingPathComponent("fr.mmdb").path
        let germany = directory.appendingPathComponent("de.mmdb").path
        try Self.writeDatabase("FR", to: france)
        try Self.writeDatabase("DE", to: germany)
        try FileManager.default.copyItem(atPath: france, toPath: path)

        let handle = try GeoDatabaseHandle(path: path)
        let expected: Set = [CountryCode("FR")!, CountryCode("DE")!]
        let reloads = 20
        let readers = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    var ok = true
                    for _ in 0..<20_000 {
                        ok = ok && expected.contains(handle.current.lookup(Self.address).country)
                        ok = ok && handle.withDatabases { main, _ in expected.contains(main.lookup(Self.address).country) }
                    }
                    return ok
                }
            }
            group.addTask {
                var ok = true
                for i in 0..<reloads {
                    let source = i & 1 == 0 ? germany : france
                    let staged = path + ".staged"
                    ok = ok && (try? FileManager.default.copyItem(atPath: source, toPath: staged)) != nil
                    ok = ok && rename(staged, path) == 0
                    ok = ok && handle.reloadIfChanged().database == .reloaded
                }
                return ok
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(readers == [true, true, true])
    }
}
