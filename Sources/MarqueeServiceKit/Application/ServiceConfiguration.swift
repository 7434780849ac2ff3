import Configuration
import Foundation
import SystemPackage

/// Where a service's settings come from, strongest first: command-line flags (applied by the
/// caller), `MARQUEE_*` environment variables (`MARQUEE_AUTH_LISTEN` for `auth.listen`), then the
/// YAML file given with `--config`, then the defaults.
public struct ServiceConfiguration: Sendable {
    public let reader: ConfigReader
    /// `data`: the folder SQLite databases and other local state live in (default `var`).
    public let dataDirectory: String

    public init(configFile: String?, dataDirectory: String?, environment: [String: String] = ProcessInfo.processInfo.environment) async throws {
        var variables: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix("MARQUEE_") {
            variables[String(name.dropFirst("MARQUEE_".count))] = value
        }
        var providers: [any ConfigProvider] = [EnvironmentVariablesProvider(environmentVariables: variables)]
        if let configFile {
            providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(configFile)))
        }
        reader = ConfigReader(providers: providers)
        self.dataDirectory = dataDirectory ?? reader.string(forKey: "data", default: "var")
    }

    /// `sqlite://<data>/<name>.db` unless `key` (or the flag) names a database.
    public func databaseURL(flag: String?, key: String, defaultName: String) -> String {
        if let flag { return flag }
        if let configured = reader.string(forKey: ConfigKey(key)) { return configured }
        let folder = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        return "sqlite://\(folder)/\(defaultName).db"
    }

    public func string(_ key: String, flag: String?, default fallback: String) -> String {
        flag ?? reader.string(forKey: ConfigKey(key), default: fallback)
    }

    public func int(_ key: String, default fallback: Int) -> Int {
        reader.int(forKey: ConfigKey(key), default: fallback)
    }
}
