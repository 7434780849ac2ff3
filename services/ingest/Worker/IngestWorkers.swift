import ServiceLifecycle

/// A node's transcoding workers as one lifecycle service: each polls the shared queue until the
/// service group shuts down, and a worker stopped mid-job gives the job back to the queue
/// (`IngestJobs.release`) so the next worker starts it at once.
public struct IngestWorkers: Service {
    let workers: [IngestWorker]

    public init(_ workers: [IngestWorker]) {
        self.workers = workers
    }

    public func run() async throws {
        // An upload-only node (no workers) still runs until shutdown: a service that returns
        // early would stop the whole group.
        guard !workers.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        try await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for worker in workers { group.addTask { await worker.run() } }
            }
        }
    }
}
