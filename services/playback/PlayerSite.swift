import Foundation

/// The player page's files (HTML, CSS, JavaScript), shipped as package resources. A gateway
/// serves them from its store under `player/` on a public prefix (`tokens.public_prefixes`), so
/// the page, the APIs and the signed media all come from one origin.
public enum PlayerSite {
    /// Where the files go in the store (and so in the gateway's paths: `/player/`).
    public static let prefix = "player"

    /// Every file: its name under `prefix` and its bytes.
    public static func files() throws -> [(name: String, bytes: [UInt8])] {
        guard let folder = Bundle.module.url(forResource: "player", withExtension: nil) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "the player page's resources are missing from the bundle"])
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
        return try names.map { name in (name, [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))) }
    }
}
