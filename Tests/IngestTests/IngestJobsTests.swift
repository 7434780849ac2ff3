import Foundation
import MarqueeServiceKit
import MarqueeTestSupport
import Testing

import MarqueeIngest

@Suite("Ingest job queue (SQLite and PostgreSQL)")
struct IngestJobsTests {
    static let titleID = Identifier.make()
    static let lease = Duration.seconds(30)

    /// A migrated, empty ingest database of `kind` and its queue.
    static func queue(_ kind: DatabaseKind) async throws -> (IngestJobs, any Database) {
        let database = try await openDatabase(try kind.freshURL())
        try await IngestJobs.migrate(database)
        return (IngestJobs(database: database), database)
    }

    @Test("Two workers claim two different jobs, oldest first; an empty queue gives nothing", arguments: DatabaseKind.allCases)
    func twoWorkers(kind: DatabaseKind) async throws {
        let (jobs, database) = try await Self.queue(kind)
        let now = unixMilliseconds()
        let first = try await jobs.enqueue(titleID: Self.titleID, source: "/data/a.source", at: now)
        let second = try await jobs.enqueue(titleID: Self.titleID, source: "/data/b.source", at: now + 1)
        #expect(first.status == .queued && first.attempts == 0 && first.maxAttempts == 3)

        let a = try #require(try await jobs.claim(worker: "node-a", lease: Self.lease, at: now + 10))
        let b = try #require(try await jobs.claim(worker: "node-b", lease: Self.lease, at: now + 10))
        #expect(a.id == first.id && b.id == second.id)
        #expect(a.status == .running && a.leaseOwner == "node-a" && a.attempts == 1)
        #expect(a.leaseExpiresAt == now + 10 + 30_000)
        #expect(b.leaseOwner == "node-b")
        #expect(try await jobs.claim(worker: "node-c", lease: Self.lease, at: now + 20) == nil)
        await database.close()
    }

    @Test("20 jobs claimed at once by 4 workers: each job has exactly one owner", arguments: DatabaseKind.allCases)
    func concurrentClaims(kind: DatabaseKind) async throws {
        let (jobs, database) = try await Self.queue(kind)
        var ids: Set<String> = []
        for i in 0..<20 { ids.insert(try await jobs.enqueue(titleID: Self.titleID, source: "/data/\(i).source").id) }
        let claims = try await withThrowingTaskGroup(of: [(String, String)].self) { group in
            for worker in ["w1", "w2", "w3", "w4"] {
                group.addTask {
                    var mine: [(String, String)] = []
                    // An hour's lease: under a loaded run the claims can take longer than 30 s, and
                    // an expired lease is rightly claimed again (that is `expiredLease`'s subject).
                    while let job = try await jobs.claim(worker: worker, lease: .seconds(3600)) { mine.append((job.id, worker)) }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(claims.count == 20, "each job claimed once, not \(claims.count) times")
        #expect(Set(claims.map(\.0)) == ids)
        for (id, worker) in claims {
            let job = try #require(try await jobs.job(id))
            #expect(job.leaseOwner == worker && job.attempts == 1 && job.status == .running)
        }
        await database.close()
    }

    @Test("An expired lease is reclaimed; the lost worker's heartbeat and completion are refused", arguments: DatabaseKind.allCases)
    func expiredLease(kind: DatabaseKind) async throws {
        let (jobs, database) = try await Self.queue(kind)
        let now = unixMilliseconds()
        let job = try await jobs.enqueue(titleID: Self.titleID, source: "/data/a.source", at: now)
        _ = try #require(try await jobs.claim(worker: "dead", lease: Self.lease, at: now))
        #expect(try await jobs.claim(worker: "alive", lease: Self.lease, at: now + 29_000) == nil, "a live lease is not stolen")

        let reclaimed = try #require(try await jobs.claim(worker: "alive", lease: Self.lease, at: now + 31_000))
        #expect(reclaimed.id == job.id && reclaimed.attempts == 2 && reclaimed.leaseOwner == "alive")
        #expect(try await !jobs.heartbeat(job: job.id, worker: "dead", progress: JobProgress(percent: 90), lease: Self.lease, at: now + 32_000))
        #expect(try await !jobs.complete(job: job.id, worker: "dead", packageVersion: "v-dead", at: now + 32_000))
        #expect(try await !jobs.fail(job: job.id, worker: "dead", error: "late", retryable: true, at: now + 32_000))

        #expect(try await jobs.heartbeat(job: job.id, worker: "alive", progress: JobProgress(percent: 50), lease: Self.lease, at: now + 40_000))
        #expect(try await jobs.complete(job: job.id, worker: "alive", packageVersion: "v1", at: now + 50_000))
        #expect(try await !jobs.complete(job: job.id, worker: "alive", packageVersion: "v2", at: now + 50_001), "one completion per job")
        let done = try #require(try await jobs.job(job.id))
        #expect(done.status == .succeeded && done.packageVersion == "v1" && done.progressPercent == 100 && done.leaseOwner == nil)
        #expect(try await jobs.claim(worker: "other", lease: Self.lease, at: now + 1_000_000) == nil, "finished jobs are never claimed")
        await database.close()
    }

    @Test("release gives a job back without counting the attempt; only its holder may", arguments: DatabaseKind.allCases)
    func release(kind: DatabaseKind) async throws {
        let (jobs, database) = try await Self.queue(kind)
        let now = unixMilliseconds()
        let job = try await jobs.enqueue(titleID: Self.titleID, source: "/data/a.source", at: now)
        _ = try #require(try await jobs.claim(worker: "w1", lease: Self.lease, at: now))
        #expect(try await jobs.release(job: job.id, worker: "someone-else", at: now + 1) == false)
        #expect(try await jobs.release(job: job.id, worker: "w1", at: now + 2))
        let released = try #require(try await jobs.job(job.id))
        #expect(released.status == .queued && released.attempts == 0)
        // Claimable at once, long before the old lease would have expired.
        let again = try #require(try await jobs.claim(worker: "w2", lease: Self.lease, at: now + 3))
        #expect(again.id == job.id && again.attempts == 1)
        #expect(try await jobs.release(job: job.id, worker: "w1", at: now + 4) == false)
        await database.close()
    }

    @Test("A job whose worker is lost max_attempts times fails with the reason", arguments: DatabaseKind.allCases)
    func maxAttempts(kind: DatabaseKind) async throws {
        let (jobs, database) = try await Self.queue(kind)
        var now = unixMilliseconds()
        let job = try await jobs.enqueue(titleID: Self.titleID, source: "/data/a.source", at: now)
        for attempt in 1...3 {
            let claimed = try #require(try await jobs.claim(worker: "w\(attempt)", lease: Self.lease, at: now))
            #expect(claimed.attempts == attempt)
            now += 31_000
        }
        #expect(try await jobs.claim(worker: "w4", lease: Self.lease, at: now) == nil)
        let failed = try #require(try await jobs.job(job.id))
        #expect(failed.status == .failed)
        #expect(failed.error == "worker lost 3 times")
        #expect(failed.leaseOwner == nil)
        #expect(try await !jobs.complete(job: job.id, worker: "w3", packageVersion: "late", at: now))
        await database.close()
    }

    @Test("Failures: retryable ones re-queue while attempts remain, others fail for good", arguments: DatabaseKind.allCases)
    func failures(kind: DatabaseKind) async throws {
        let (jobs, database) = try await Self.queue(kind)
        let now = unixMilliseconds()
        let job = try await jobs.enqueue(titleID: Self.titleID, source: "/data/a.source", maxAttempts: 2, at: now)
        _ = try #require(try await jobs.claim(worker: "w1", lease: Self.lease, at: now))
        #expect(try await jobs.fail(job: job.id, worker: "w1", error: "store unreachable", retryable: true, at: now + 1))
        #expect(try await jobs.job(job.id)?.status == .queued)
        _ = try #require(try await jobs.claim(worker: "w2", lease: Self.lease, at: now + 2))
        #expect(try await jobs.fail(job: job.id, worker: "w2", error: "store unreachable", retryable: true, at: now + 3))
        let exhausted = try #require(try await jobs.job(job.id))
        #expect(exhausted.status == .failed && exhausted.error == "store unreachable", "no attempts left")

        let bad = try await jobs.enqueue(titleID: Self.titleID, source: "/data/b.source", at: now + 4)
        _ = try #require(try await jobs.claim(worker: "w1", lease: Self.lease, at: now + 5))
        #expect(try await jobs.fail(job: bad.id, worker: "w1", error: "not a media file", retryable: false, at: now + 6))
        #expect(try await jobs.job(bad.id)?.status == .failed)
        await database.close()
    }

    @Test("Progress reported by heartbeats is readable by id and in the list", arguments: DatabaseKind.allCases)
    func progress(kind: DatabaseKind) async throws {
        let (jobs, database) = try await Self.queue(kind)
        let now = unixMilliseconds()
        let older = try await jobs.enqueue(titleID: Self.titleID, source: "/data/a.source", at: now)
        let job = try await jobs.enqueue(titleID: Self.titleID, source: "/data/b.source", at: now)
        let claimed = try #require(try await jobs.claim(worker: "w1", lease: Self.lease, at: now))
        let progress = JobProgress(percent: 42.5, framesPerSecond: 118.25, etaSeconds: 73)
        #expect(try await jobs.heartbeat(job: claimed.id, worker: "w1", progress: progress, lease: Self.lease, at: now + 1000))
        let read = try #require(try await jobs.job(claimed.id))
        #expect(read.progressPercent == 42.5 && read.framesPerSecond == 118.25 && read.etaSeconds == 73)
        #expect(read.leaseExpiresAt == now + 1000 + 30_000, "a heartbeat renews the lease")

        let first = try await jobs.list(limit: 1)
        #expect(first.jobs.count == 1 && first.more)
        let second = try await jobs.list(limit: 1, after: first.jobs[0].id)
        #expect(second.jobs.count == 1 && !second.more)
        #expect(Set([first.jobs[0].id, second.jobs[0].id]) == [older.id, job.id])
        await database.close()
    }
}
