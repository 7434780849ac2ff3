import Foundation

/// Turns a source file into a package folder: probe (refusing bad sources before any output
/// exists), transcode into a hidden working folder beside the destination, then move the files
/// in with the manifests last, so `DIR/master.m3u8` and `DIR/manifest.mpd` appear only when the
/// whole package is there. On any failure the working folder is removed and no manifest exists.
public enum Packager {
    /// - Parameter limits: what the source must be (checked by the probe, and on every decoded frame).
    public static func package(
        source: String, into destination: String, settings: TranscodeSettings = TranscodeSettings(), limits: ProbeLimits = ProbeLimits(),
        progress: (TranscodeProgress) -> Void = { _ in }, shouldContinue: () -> Bool = { true }
    ) throws -> PackageSummary {
        let info = try MediaProbe.probe(source, limits: limits, thorough: false)
        let files = FileManager.default
        let target = URL(fileURLWithPath: destination).standardizedFileURL
        try files.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        let work = target.deletingLastPathComponent().appendingPathComponent(".incoming-\(target.lastPathComponent)-\(UUID().uuidString.prefix(8))")
        try files.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? files.removeItem(at: work) }
        let summary: PackageSummary
        do {
            summary = try Transcoder(source: source, folder: work.path, settings: settings, info: info, limits: limits).run(
                progress: progress, shouldContinue: shouldContinue)
        } catch {
            if let refusal = error.refusal { throw refusal }
            throw error
        }
        try files.createDirectory(at: target, withIntermediateDirectories: true)
        let manifests = ["manifest.mpd", "master.m3u8"]
        let names = try files.contentsOfDirectory(atPath: work.path).filter { !$0.hasPrefix(".") }
        for name in names.filter({ !manifests.contains($0) }).sorted() + manifests.filter(names.contains) {
            let to = target.appendingPathComponent(name)
            if files.fileExists(atPath: to.path) { try files.removeItem(at: to) }
            try files.moveItem(at: work.appendingPathComponent(name), to: to)
        }
        let encoded = try JSONEncoder().encode(summary)
        try encoded.write(to: target.appendingPathComponent("package.json"))
        return summary
    }
}
