import CLinux
import Glibc
import MarqueePolicy

/// The token keys named on the command line or in the configuration (`ID:SECRET_FILE`), plus every
/// `<ID>.key` file in a key folder, loaded into a key ring that loops read lock-free, and reloaded
/// when a file changes or on SIGHUP. Rotation without downtime: drop the new key's file into the
/// folder, mint with it, delete the old one once its last token expired. A reload that fails
/// (an unreadable file, a short secret) keeps the previous ring and says why.
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
    public let directory: String?
    public let ring: SwappableReference<TokenKeyRing>
    private var identities: [FileIdentity?]

    public init(_ files: [KeyFile], directory: String? = nil) throws(TokenKeyError) {
        self.files = files
        self.directory = directory
        let all = try Self.keyFiles(files, directory)
        guard !all.isEmpty else { throw TokenKeyError("no token key: the key folder \(directory ?? "") holds no <ID>.key file") }
        let (ring, identities) = try Self.load(all)
        self.ring = SwappableReference(ring)
        self.identities = identities
    }

    /// Reloads when any file changed, appeared or went (or always, with `force`). Returns a
    /// message for the log, or nil when nothing changed.
    public func reloadIfChanged(force: Bool = false) -> String? {
        let all: [KeyFile]
        do { all = try Self.keyFiles(files, directory) } catch { return "token keys NOT reloaded: \(error)" }
        let now = all.map { FileIdentity(path: $0.path) }
        guard force || now != identities else { return nil }
        do {
            guard !all.isEmpty else { throw TokenKeyError("no key file is left") }
            let (ring, stamps) = try Self.load(all)
            self.ring.replace(with: ring)
            identities = stamps
            return "token keys reloaded: \(all.map(\.id).joined(separator: ", "))"
        } catch {
            identities = now  // do not retry the same broken state every second
            return "token keys NOT reloaded, keeping the previous ones: \(error)"
        }
    }

    /// The configured files plus the folder's `<ID>.key` files, in a stable order.
    static func keyFiles(_ files: [KeyFile], _ directory: String?) throws(TokenKeyError) -> [KeyFile] {
        guard let directory else { return files }
        guard let dir = opendir(directory) else {
            throw TokenKeyError("cannot read the token key folder \(directory): \(String(cString: strerror(errno)))")
        }
        defer { closedir(dir) }
        var found: [KeyFile] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasSuffix(".key"), !name.hasPrefix(".") else { continue }
            let id = String(name.dropLast(4))
            guard TokenClaims.isValidKeyID(id) else { continue }
            found.append(KeyFile(id: id, path: directory + "/" + name))
        }
        return files + found.sorted { $0.id < $1.id }
    }

    static func load(_ files: [KeyFile]) throws(TokenKeyError) -> (TokenKeyRing, [FileIdentity?]) {
        var secrets: [(id: String, secret: [UInt8])] = []
        var stamps: [FileIdentity?] = []
        for file in files {
            stamps.append(FileIdentity(path: file.path))
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
