import Foundation
import Glibc
import MarqueeTestSupport
import Testing

/// `deploy/k8s`: every overlay renders with `kubectl kustomize`, every object validates against
/// the Kubernetes schemas (kubernetes-validate, strict), the workloads are wired as an operator
/// expects, and the configuration an edge pod gets is one `marquee edge` starts with.
@Suite("Kubernetes deployment (deploy/k8s)", .serialized)
struct KubernetesDeploymentTests {
    static let overlays = ["origin-eu", "edge-eu", "edge-us"]
    static let kubernetesVersion = "1.30.0"

    /// A copy of deploy/k8s with secrets made by its own script, and each overlay rendered.
    struct Rendered {
        let folder: URL
        let files: [String: URL]
        let summary: [String: [String: Any]]
    }

    static func render() throws -> Rendered {
        let kubectl = "/usr/bin/kubectl"
        guard FileManager.default.isExecutableFile(atPath: kubectl) else {
            throw ToolError(description: "kubectl is not installed; run scripts/install-deps test")
        }
        let folder = try Scratch.newDirectory("k8s")
        let copy = folder.appendingPathComponent("k8s")
        try FileManager.default.copyItem(at: PythonEnvironment.packageRoot.appendingPathComponent("deploy/k8s"), to: copy)
        let secrets = try Tool.run(copy.appendingPathComponent("make-secrets.sh").path, [copy.appendingPathComponent("overlays").path])
        guard secrets.termination == .exited(0) else { throw ToolError(description: "make-secrets.sh failed: \(secrets.stderrText)") }
        var files: [String: URL] = [:]
        for overlay in overlays {
            let rendered = try Tool.run(kubectl, ["kustomize", copy.appendingPathComponent("overlays/\(overlay)").path])
            guard rendered.termination == .exited(0) else { throw ToolError(description: "kubectl kustomize \(overlay) failed: \(rendered.stderrText)") }
            let file = folder.appendingPathComponent("\(overlay).yaml")
            try rendered.stdoutText.write(to: file, atomically: true, encoding: .utf8)
            files[overlay] = file
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/k8s_summary.py")
        let summarised = try Tool.run(try PythonEnvironment.python().path, [script.path] + overlays.map { files[$0]!.path })
        guard summarised.termination == .exited(0),
            let json = try JSONSerialization.jsonObject(with: Data(summarised.stdoutText.utf8)) as? [String: [String: Any]]
        else { throw ToolError(description: "k8s_summary.py failed: \(summarised.stderrText)") }
        var summary: [String: [String: Any]] = [:]
        for overlay in overlays { summary[overlay] = json[files[overlay]!.path] }
        return Rendered(folder: folder, files: files, summary: summary)
    }

    static func validate(_ file: URL) throws -> ToolResult {
        let validator = try PythonEnvironment.python().deletingLastPathComponent().appendingPathComponent("kubernetes-validate")
        return try Tool.run(validator.path, ["--strict", "--no-warn", "-k", kubernetesVersion, file.path], timeout: .seconds(120))
    }

    @Test("every overlay renders with kubectl kustomize and each object passes strict schema validation; a misspelt field fails it")
    func rendersAndValidates() throws {
        let rendered = try Self.render()
        for overlay in Self.overlays {
            let result = try Self.validate(rendered.files[overlay]!)
            #expect(result.termination == .exited(0), "\(overlay): \(result.stdoutText) \(result.stderrText)")
        }
        // The validator catches what it should: a field Kubernetes does not know.
        let broken = rendered.folder.appendingPathComponent("broken.yaml")
        let text = try String(contentsOf: rendered.files["edge-eu"]!, encoding: .utf8)
        try text.replacingOccurrences(of: "terminationGracePeriodSeconds:", with: "terminationGracePeriodSecond:").write(to: broken, atomically: true, encoding: .utf8)
        #expect(try Self.validate(broken).termination != .exited(0), "a misspelt field passed validation")
    }

    @Test("origins and edges: probes on the admin endpoints, a cache volume each, HPA, PDB and NetworkPolicy on their pods, one set of keys in every region")
    func workloads() throws {
        let rendered = try Self.render()
        var tokenKeys: Set<String> = []
        var edgeKeys: Set<String> = []
        for overlay in Self.overlays {
            let summary = try #require(rendered.summary[overlay])
            let role = overlay.hasPrefix("origin") ? "origin" : "edge"
            let workloads = try #require(summary["workloads"] as? [String: [String: Any]])
            let workload = try #require(workloads["marquee-\(role)"], "\(overlay) has no marquee-\(role)")
            #expect(workload["kind"] as? String == "StatefulSet")
            #expect(workload["claims"] as? [String] == ["cache"], "\(overlay): each \(role) keeps its cache on its own volume")
            let container = try #require((workload["containers"] as? [[String: Any]])?.first)
            #expect((container["args"] as? [String])?.first == role)
            let ports = try #require(container["ports"] as? [String: Int])
            #expect(ports == ["media": 8080, "admin": 9090])
            #expect((container["readiness"] as? [String: Any])?["path"] as? String == "/readyz")
            #expect((container["liveness"] as? [String: Any])?["path"] as? String == "/healthz")
            #expect((container["readiness"] as? [String: Any])?["port"] as? String == "admin")
            #expect((container["requests"] as? [String: Any])?["cpu"] != nil)
            let env = try #require(container["env"] as? [String: String])
            #expect(env["MARQUEE_GATEWAY_REGION"] == (overlay.hasSuffix("us") ? "us" : "eu"))
            if role == "edge" { #expect(env["MARQUEE_EDGE_UPSTREAMS"]?.hasPrefix("http://") == true) }
            if role == "origin" { #expect(env["MARQUEE_ORIGIN_STORE"]?.hasPrefix("s3://") == true) }

            // Every generated ConfigMap and Secret the pods mount exists under its hashed name.
            let objects = try #require(summary["objects"] as? [[String: Any]])
            let names = Set(objects.map { "\($0["kind"]!)/\($0["name"]!)" })
            for (_, source) in try #require(workload["volumes"] as? [String: String]) {
                #expect(names.contains("ConfigMap/\(source)") || names.contains("Secret/\(source)"), "\(overlay) mounts a missing \(source)")
            }
            let podLabels = try #require(workload["pod_labels"] as? [String: String])
            func selects(_ selector: [String: String]) -> Bool { selector.allSatisfy { podLabels[$0.key] == $0.value } }
            let pdbs = try #require(summary["pdbs"] as? [[String: Any]])
            #expect(pdbs.contains { selects($0["selector"] as? [String: String] ?? ["": ""]) }, "\(overlay): no PodDisruptionBudget selects the pods")
            let policies = try #require(summary["policies"] as? [[String: Any]])
            let policy = try #require(policies.first { selects($0["selector"] as? [String: String] ?? ["": ""]) }, "\(overlay): no NetworkPolicy")
            #expect(policy["ports"] as? [Int] == [8080, 9090])
            if role == "edge" {
                let hpas = try #require(summary["hpas"] as? [[String: Any]])
                let target = try #require(hpas.first?["target"] as? [String: String])
                #expect(target["kind"] == "StatefulSet" && target["name"] == "marquee-edge")
            }
            let secrets = try #require(summary["secrets"] as? [String: [String: String]])
            tokenKeys.formUnion(secrets.filter { $0.key.hasPrefix("marquee-token-keys") }.compactMap { $0.value["k1.key"] })
            edgeKeys.formUnion(secrets.filter { $0.key.hasPrefix("marquee-edge-key") }.compactMap { $0.value["edge.key"] })
        }
        #expect(tokenKeys.count == 1, "every region must verify the same tokens")
        #expect(edgeKeys.count == 1, "edges must sign with the key the origin checks")
    }

    @Test("the configuration an edge pod mounts is one marquee edge starts with (paths moved to a scratch folder, the upstream to nginx)")
    func edgeConfigurationStarts() throws {
        let rendered = try Self.render()
        let summary = try #require(rendered.summary["edge-eu"])
        let configMaps = try #require(summary["configmaps"] as? [String: [String: String]])
        let edgeYAML = try #require(configMaps.first { $0.key.hasPrefix("marquee-edge-config") }?.value["edge.yaml"])
        // Lay the mounted files out as the pod sees them, under a scratch root.
        let root = try Scratch.newDirectory("pod")
        let secrets = rendered.folder.appendingPathComponent("k8s/overlays/edge-eu/secrets")
        let fm = FileManager.default
        for (folder, file, source) in [("token-keys", "k1.key", "token-keys/k1.key"), ("edge-key", "edge.key", "edge.key"), ("admin", "admin.token", "admin.token")] {
            try fm.createDirectory(at: root.appendingPathComponent("etc/marquee/\(folder)"), withIntermediateDirectories: true)
            try fm.copyItem(at: secrets.appendingPathComponent(source), to: root.appendingPathComponent("etc/marquee/\(folder)/\(file)"))
        }
        let config = root.appendingPathComponent("edge.yaml")
        try edgeYAML.replacingOccurrences(of: "/etc/marquee/", with: root.path + "/etc/marquee/")
            .replacingOccurrences(of: "/var/cache/marquee", with: root.path + "/cache")
            .write(to: config, atomically: true, encoding: .utf8)
        let nginx = try NginxOrigin(root: try MediaFixtures.shared().root)
        let edge = try ServerProcess(
            role: "edge", root: root, publicContent: false, environment: ["MARQUEE_EDGE_UPSTREAMS": nginx.url, "MARQUEE_GATEWAY_REGION": "eu"],
            configFile: config, serving: [])
        defer { edge.stop() }
        #expect(try edge.admin("/readyz").status == 200)
        // Tokens are required, as in the pod: an unsigned request is refused before any fetch.
        #expect(try Curl.fetch(edge.url(MediaFixtures.hlsSegment)).status == 403)
        #expect(nginx.count(MediaFixtures.hlsSegment) == 0, "a refused request was fetched: \(nginx.requests)")
    }
}
