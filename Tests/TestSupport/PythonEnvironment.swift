import Foundation

/// The Python environment `scripts/install-deps test` creates in `.build/python`: a real GeoLite2
/// database (maxminddb-geolite2) and mmdb-writer for small hand-made databases.
public enum PythonEnvironment {
    /// The package root, found from this file's location.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The venv's interpreter; fails with the command that creates it.
    public static func python() throws -> URL {
        let python = packageRoot.appendingPathComponent(".build/python/bin/python")
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            throw TestEnvironmentError("no Python environment at \(python.path): run `scripts/install-deps test` first")
        }
        return python
    }

    /// Runs `script` with the venv's Python, feeding `input` on stdin; returns stdout.
    @discardableResult
    public static func run(_ script: String, input: Data = Data()) throws -> String {
        let process = Process()
        process.executableURL = try python()
        process.arguments = ["-c", script]
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestEnvironmentError(
                "python failed (\(process.terminationStatus)): \(String(decoding: errors, as: UTF8.self)); run `scripts/install-deps test` if a package is missing")
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The GeoLite2 City database inside the `maxminddb-geolite2` package.
    public static func geoLite2City() throws -> String {
        let path = try run("import geolite2; print(geolite2.geolite2.filename)").trimmingCharacters(in: .whitespacesAndNewlines)
        guard FileManager.default.fileExists(atPath: path) else {
            throw TestEnvironmentError("GeoLite2 database not found at \(path): run `scripts/install-deps test`")
        }
        return path
    }
}
