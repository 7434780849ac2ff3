import CLinux
import Glibc
import MarqueeTokens

/// The token keys named on the command line or in the configuration (`ID:SECRET_FILE`), loaded into
/// a key ring that loops read lock-free, and reloaded when a file changes or on SIGHUP. A reload
/// that fails (a missing file, a short secret) keeps the previous ring and says why.
public final class TokenKeyFiles: @unchecked Sendable {
    public struct KeyFile: Sendable, Equatable {
        public var id: String
        public var path: String

        public init(id: String, path: String) {
            self.id = id
            self.path = path
        }

        /// `ID:PATH`, the form flags and configuration use.
        public init(parsing text: String) throws(TokenKeyError) {
            guard let colon = text.firstIndex(of: ":") else {
                throw TokenKeyError("token key \"\(text)\" must be ID:SECRET_FILE")
            }
            id = String(text[..<colon])
            path = String(text[text.index(after: colon)...])
            guard TokenClaims.isValidKeyID(id) else { throw TokenKeyError("token key id \"\(id)\" must be 1-64 characters of A-Z a-z 0-9 _ -") }
            guard !path.isEmpty else { throw TokenKeyError("token key \(id): the secret file path is empty") }
        }
    }

    public let files: [KeyFile]
    let ring: SwappableReference<TokenKeyRing>
    private var identities: [FileStamp]

    public init(_ files: [KeyFile]) throws(TokenKeyError) {
        self.files = files
        let (ring, identities) = try Self.load(files)
        self.ring = SwappableReference(ring)
        self.identities = identities
    }

    /// Reloads when any file changed (or always, with `force`). Returns a message for the log, or
    /// nil when nothing changed.
    public func reloadIfChanged(force: Bool = false) -> String? {
        let now = files.map { FileStamp(path: $0.path) }
        guard force || now != identities else { return nil }
        do {
            let (ring, stamps) = try Self.load(files)
            self.ring.replace(with: ring)
            identities = stamps
            return "token keys reloaded: \(files.map(\.id).joined(separator: ", "))"
        } catch {
            identities = now  // do not retry the same broken state every second
            return "token keys NOT reloaded, keeping the previous ones: \(error)"
        }
    }

    static func load(_ files: [KeyFile]) throws(TokenKeyError) -> (TokenKeyRing, [FileStamp]) {
        var secrets: [(id: String, secret: [UInt8])] = []
        var stamps: [FileStamp] = []
        for file in files {
            stamps.append(FileStamp(path: file.path))
            guard let secret = readSecret(file.path) else {
                throw TokenKeyError("token key \(file.id): cannot read \(file.path): \(String(cString: strerror(errno)))")
            }
            secrets.append((file.id, secret))
        }
        return (try TokenKeyRing(secrets), stamps)
    }

    /// The file's bytes without trailing line breaks and spaces (editors add them).
    public static func readSecret(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
            if n < 0 { return nil }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > 65536 { return nil }
        }
        while let last = bytes.last, last == 0x0A || last == 0x0D || last == 0x20 || last == 0x09 { bytes.removeLast() }
        return bytes
    }
}

/// What identifies a file's content cheaply: device, inode, size and modification time.
struct FileStamp: Equatable {
    var device: UInt64 = 0
    var inode: UInt64 = 0
    var size: Int64 = -1
    var seconds: Int64 = 0
    var nanoseconds: Int64 = 0

    init(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        seconds = Int64(st.st_mtim.tv_sec)
        nanoseconds = Int64(st.st_mtim.tv_nsec)
    }
}
