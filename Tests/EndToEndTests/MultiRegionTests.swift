import Foundation
import MarqueeTestSupport
import Testing

/// `deploy/local/multi-region.sh`, as a user runs it: an origin region and three edge regions in
/// network namespaces, 20/80/150 ms apart, players in each region playing through their own edge;
/// the origin stopped for 60 s while they keep playing; a purge that reaches every edge.
@Suite("Multi-region network (deploy/local)")
struct MultiRegionTests {
    @Test("players in three regions play through their edges; 60 s without the origin cost no segment; a purge reaches all edges")
    func multiRegion() throws {
        let script = PythonEnvironment.packageRoot.appendingPathComponent("deploy/local/multi-region.sh")
        let binary = try MarqueeBinary.locate()
        let run = try Tool.run("/usr/bin/env", ["MARQUEE_BIN=\(binary.path)", "OUTAGE=60", script.path], timeout: .seconds(900))
        let output = run.stdoutText
        #expect(run.termination == .exited(0), "the script failed: \(run.stderrText.suffix(3000)) \(output)")
        #expect(output.contains("multi-region: PASSED"), "\(output)")
        #expect(output.contains(", 0 failed, 0 failed segment requests"), "\(output)")
        #expect(output.contains("+0 warm"), "warm plays reached the origin: \(output)")
        print(output)
    }
}
