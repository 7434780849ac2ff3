import Foundation
import Glibc

/// One temporary folder per test run, `/tmp/marquee-e2e-<pid>`, holding the media fixtures and
/// every file a test writes; it is removed when the test process exits.
enum Scratch {
    static let base: URL = {
        let temporary = URL(fileURLWithPath: NSTemporaryDirectory())
        // Left behind by runs that were killed: their process is gone.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? []
        where name.hasPrefix("marquee-e2e-") {
            if let pid = Int32(name.dropFirst("marquee-e2e-".count)), kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: temporary.appendingPathComponent(name))
            }
        }
        let url = temporary.appendingPathComponent("marquee-e2e-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        // The closure cannot capture anything; the folder's name is rebuilt from the pid.
        atexit {
            let path = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("marquee-e2e-\(getpid())")
            try? FileManager.default.removeItem(at: path)
        }
        return url
    }()

    /// A fresh, empty folder.
    static func newDirectory(_ label: String) throws -> URL {
        let url = base.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A path for a new file (not created).
    static func newFile(_ label: String) -> URL {
        base.appendingPathComponent("\(label)-\(UUID().uuidString)")
    }
}
