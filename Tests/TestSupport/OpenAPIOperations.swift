/// The `METHOD /path` pairs an OpenAPI document lists under `paths:` (paths as written, `{id}`),
/// for tests that keep each service's document equal to its router's routes.
public enum OpenAPIOperations {
    public static func documented(in yaml: String) -> Set<String> {
        var operations: Set<String> = []
        var inPaths = false
        var path: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" {
                inPaths = true
                continue
            }
            guard inPaths else { continue }
            if !line.hasPrefix(" ") && !line.isEmpty { break }
            if line.hasPrefix("  /") && line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     ") {
                let key = String(line.drop { $0 == " " }.dropLast())
                if ["get", "post", "put", "patch", "delete", "head", "options"].contains(key) { operations.insert("\(key.uppercased()) \(path)") }
            }
        }
        return operations
    }
}
