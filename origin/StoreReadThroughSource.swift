import Dispatch
import Glibc
import MarqueeGateway
import MarqueeStore
import Synchronization

/// Feeds the gateway's read-through cache from an object store (S3): one blocking download per
/// call on a cache fetch thread, bounded by the cache's fetch timeout.
struct StoreReadThroughSource: ReadThroughSource {
    let store: any ObjectStore

    /// The store's client writes whole files, so requests wait for the object (no streaming fill).
    func download(_ key: String, toFile path: String, timeoutMilliseconds: Int64, revalidating: ObjectFreshness?, fill: ObjectFill?) -> ReadThroughDownload {
        let objectKey: ObjectKey
        do { objectKey = try ObjectKey(key) } catch { return .notFound }
        let result = Mutex<ReadThroughDownload?>(nil)
        let done = DispatchSemaphore(value: 0)
        let store = self.store
        let task = Task {
            let outcome: ReadThroughDownload
            do {
                try await store.download(objectKey, toFile: path)
                outcome = .stored
            } catch StoreError.notFound {
                outcome = .notFound
            } catch {
                outcome = .failed("\(error)")
            }
            let late = result.withLock { (value: inout ReadThroughDownload?) -> Bool in
                if value != nil { return true }
                value = outcome
                return false
            }
            // Finished after the fetch gave up: nobody will place the file.
            if late && outcome == .stored { _ = unlink(path) }
            done.signal()
        }
        if done.wait(timeout: .now() + .milliseconds(Int(timeoutMilliseconds))) == .timedOut {
            let gaveUp = result.withLock { (value: inout ReadThroughDownload?) -> Bool in
                if value != nil { return false }
                value = .timedOut
                return true
            }
            if gaveUp {
                task.cancel()
                return .timedOut
            }
        }
        return result.withLock { $0 } ?? .failed("the download ended without an outcome")
    }
}
