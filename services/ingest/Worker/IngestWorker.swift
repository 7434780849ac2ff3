import Foundation
import MarqueeMedia
import MarqueeServiceKit
import MarqueeStore
import NIOConcurrencyHelpers

/// Where a worker announces a finished package: the catalog (`PUT /titles/{id}/package`), which
/// moves the title to ready.
public protocol PackageAnnouncer: Sendable {
    func announce(titleID: String, version: String, summary: PackageSummary) async throws
}

/// Takes jobs from the shared queue and turns each source into a published package:
/// fetch the source from the store (when it is there) → probe → transcode and package (on its own thread) → copy to the object store under
/// `titles/<title>/<version>/`, manifests last → announce to the catalog → complete the job.
///
/// The package version is the job's id, so a job redone by another worker (after this one died)
/// writes the very same version: one job, one version, however many attempts. Heartbeats renew
/// the lease and report progress; when one is refused (the lease went to another worker), the
/// transcode stops and nothing is published.
public struct IngestWorker: Sendable {
    public let jobs: IngestJobs
    public let store: any ObjectStore
    /// Where uploads put their sources (`sources/<upload id>`); the package store by default.
    public let sourceStore: any ObjectStore
    public let workerID: String
    public let lease: Duration
    public let settings: TranscodeSettings
    /// Scratch space for packages being made (one folder per job, removed afterwards).
    public let workFolder: String
    public let announcer: (any PackageAnnouncer)?

    public init(
        jobs: IngestJobs, store: any ObjectStore, sourceStore: (any ObjectStore)? = nil, workerID: String, lease: Duration = .seconds(60),
        settings: TranscodeSettings = TranscodeSettings(), workFolder: String, announcer: (any PackageAnnouncer)?
    ) {
        self.jobs = jobs
        self.store = store
        self.sourceStore = sourceStore ?? store
        self.workerID = workerID
        self.lease = lease
        self.settings = settings
        self.workFolder = workFolder
        self.announcer = announcer
    }

    /// Claims and processes one job; nil when the queue had nothing to do.
    @discardableResult
    public func processNext() async throws -> IngestJob? {
        guard let job = try await jobs.claim(worker: workerID, lease: lease) else { return nil }
        await process(job)
        return try await jobs.job(job.id)
    }

    /// Processes jobs until the task is cancelled, polling an empty queue every `poll`.
    public func run(poll: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            do {
                if try await processNext() == nil { try await Task.sleep(for: poll) }
            } catch {
                try? await Task.sleep(for: poll)
            }
        }
    }

    /// Progress and lease shared between the transcoding thread and the heartbeat task.
    final class Lease: Sendable {
        struct State {
            var progress = JobProgress(percent: 0, framesPerSecond: nil, etaSeconds: nil)
            var lost = false
            /// The worker's task was cancelled (the node is shutting down).
            var stopping = false
        }
        let state = NIOLockedValueBox(State())
    }

    func process(_ job: IngestJob) async {
        let version = job.id
        let folder = URL(fileURLWithPath: workFolder).appendingPathComponent("job-\(job.id)-\(UUID().uuidString.prefix(6))/\(version)").path
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: folder).deletingLastPathComponent().path) }
        let shared = Lease()
        let heartbeats = Task {
            while !Task.isCancelled {
                // Often enough for progress to read live; well inside the lease.
                try? await Task.sleep(for: min(lease / 3, .seconds(5)))
                if Task.isCancelled { return }
                let progress = shared.state.withLockedValue { $0.progress }
                let kept = (try? await jobs.heartbeat(job: job.id, worker: workerID, progress: progress, lease: lease)) ?? true
                if !kept { shared.state.withLockedValue { $0.lost = true } }
            }
        }
        defer { heartbeats.cancel() }
        await withTaskCancellationHandler {
            await transcodeAndPublish(job, folder: folder, version: version, shared: shared)
        } onCancel: {
            shared.state.withLockedValue { $0.stopping = true }
        }
    }

    /// The job's source as a local file: fetched from the store into the job's scratch folder
    /// (beside the package folder, removed with it), or the path a local job names.
    private func localSource(of job: IngestJob, folder: String) async throws -> String {
        switch JobSource(column: job.source) {
        case .file(let path):
            return path
        case .object(let key):
            let path = URL(fileURLWithPath: folder).deletingLastPathComponent().appendingPathComponent("source").path
            do {
                try await sourceStore.download(key, toFile: path)
            } catch StoreError.notFound {
                throw MissingSource(key: key)
            }
            return path
        }
    }

    private func transcodeAndPublish(_ job: IngestJob, folder: String, version: String, shared: Lease) async {
        do {
            try FileManager.default.createDirectory(
                at: URL(fileURLWithPath: folder).deletingLastPathComponent(), withIntermediateDirectories: true)
            let source = try await localSource(of: job, folder: folder)
            let settings = settings
            let summary: PackageSummary = try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(
                        with: Result {
                            try Packager.package(
                                source: source, into: folder, settings: settings,
                                progress: { p in
                                    shared.state.withLockedValue {
                                        $0.progress = JobProgress(percent: p.percent, framesPerSecond: p.framesPerSecond, etaSeconds: Int(p.etaSeconds.rounded()))
                                    }
                                },
                                shouldContinue: { shared.state.withLockedValue { !$0.lost && !$0.stopping } })
                        })
                }
            }
            guard !shared.state.withLockedValue({ $0.lost }) else { return }
            if shared.state.withLockedValue({ $0.stopping }) {
                await giveBack(job)
                return
            }
            // Past this point the package goes out: a stop that arrives now must not cut the
            // publish, the announcement and the completion apart (a published, announced package
            // whose job went back to the queue would be made again). So they run outside the
            // worker's cancellable task.
            let (store, announcer, jobs, workerID) = (store, announcer, jobs, workerID)
            try await Task.detached {
                try await PackagePublisher.publish(folder: folder, to: store, prefix: "titles/\(job.titleID)/\(version)")
                try await announcer?.announce(titleID: job.titleID, version: version, summary: summary)
                _ = try await jobs.complete(job: job.id, worker: workerID, packageVersion: version)
            }.value
        } catch let refusal as ProbeRefusal {
            _ = try? await jobs.fail(job: job.id, worker: workerID, error: refusal.description, retryable: false)
        } catch let missing as MissingSource {
            _ = try? await jobs.fail(job: job.id, worker: workerID, error: missing.description, retryable: false)
        } catch {
            if shared.state.withLockedValue({ $0.stopping }) {
                await giveBack(job)
            } else if !shared.state.withLockedValue({ $0.lost }) {
                _ = try? await jobs.fail(job: job.id, worker: workerID, error: "\(error)", retryable: true)
            }
        }
    }

    /// Returns a job this stopping worker holds to the queue, outside the cancelled task so the
    /// database call itself is not cancelled.
    private func giveBack(_ job: IngestJob) async {
        let jobs = jobs
        let workerID = workerID
        await Task.detached { _ = try? await jobs.release(job: job.id, worker: workerID) }.value
    }
}

/// A job whose stored source is gone: retrying cannot help.
struct MissingSource: Error, CustomStringConvertible {
    let key: ObjectKey
    var description: String { "the source \(key) is not in the object store" }
}
