import Foundation
import Glibc
import MarqueeTestSupport
import Testing

/// `marquee origin --tls-cert --tls-key` with a certificate from a CA of the test's own, which
/// curl trusts with `--cacert`.
struct TLSOrigin {
    let authority: TestCertificateAuthority
    let server: ServerProcess

    init(kind: String = "ec", environment: [String: String] = [:], arguments: [String] = []) throws {
        authority = try TestCertificateAuthority(kind: kind)
        let issued = try authority.issue(["localhost", "127.0.0.1"], kind: kind)
        server = try ServerProcess(
            root: try MediaFixtures.shared().root, environment: environment,
            arguments: ["--tls-cert", issued.chain, "--tls-key", issued.key] + arguments)
    }

    /// The arguments that make a gateway serve this CA's certificate for 127.0.0.1.
    static func arguments(_ issued: TestCertificateAuthority.Issued) -> [String] {
        ["--tls-cert", issued.chain, "--tls-key", issued.key]
    }

    func fetch(_ path: String, _ options: [String] = []) throws -> CurlResponse {
        try Curl.fetch(server.url(path), ["--cacert", authority.certificate] + options)
    }

    func handshakes() throws -> Double { try server.metric("marquee_tls_handshakes_total") }
    func handshakeFailures() throws -> Double { try server.metric("marquee_tls_handshake_failures_total") }
}

@Suite("HTTPS at the gateway")
struct HTTPSTests {
    @Test(
        "curl gets files from memory and from disk whole, ranges and HEAD, over TLS 1.3 with ALPN http/1.1, several on one connection, with ECDSA and RSA certificates",
        arguments: ["ec", "rsa"])
    func files(kind: String) throws {
        let origin = try TLSOrigin(kind: kind)
        defer { origin.server.stop() }
        let fixtures = try MediaFixtures.shared()
        for path in [MediaFixtures.small, MediaFixtures.big, MediaFixtures.hlsMedia, MediaFixtures.dashManifest, MediaFixtures.hlsSegment] {
            let response = try origin.fetch(path)
            #expect(response.status == 200, "\(path): \(response.stderr)")
            let expected = try fixtures.contents(path)
            #expect(sameBytes(response.body, expected), "\(path): \(mismatch(response.body, expected))")
        }
        let big = try fixtures.contents(MediaFixtures.big)
        let range = try origin.fetch(MediaFixtures.big, ["-r", "1000-1500999"])
        #expect(range.status == 206)
        #expect(sameBytes(range.body, big[1000...1_500_999]), "\(mismatch(range.body, big[1000...1_500_999]))")
        let head = try origin.fetch(MediaFixtures.big, ["-I"])
        #expect(head.status == 200)
        #expect(head.header("content-length") == "\(MediaFixtures.bigSize)")

        let verbose = try Curl.run(["-v", "--cacert", origin.authority.certificate, "-o", "/dev/null", origin.server.url(MediaFixtures.small)])
        #expect(verbose.termination == .exited(0), "\(verbose.stderrText)")
        #expect(verbose.stderrText.contains("SSL connection using TLSv1.3"), "\(verbose.stderrText)")
        #expect(verbose.stderrText.contains("ALPN: server accepted http/1.1"), "\(verbose.stderrText)")

        // Keep-alive: three responses on one connection, after one handshake.
        let before = try origin.handshakes()
        let paths = [MediaFixtures.small, MediaFixtures.big, MediaFixtures.hlsMedia]
        let several = try Curl.run(
            ["--cacert", origin.authority.certificate, "-w", "%{num_connects} %{http_code} %{size_download}\\n"]
                + paths.flatMap { ["-o", "/dev/null", origin.server.url($0)] })
        #expect(several.termination == .exited(0), "\(several.stderrText)")
        let sizes = try paths.map { try fixtures.contents($0).count }
        #expect(several.stdoutText == "1 200 \(sizes[0])\n0 200 \(sizes[1])\n0 200 \(sizes[2])\n")
        #expect(try origin.handshakes() == before + 1)
    }

    @Test("Eight clients download a 2.5 MB file at once, two of them reading slowly: every byte arrives")
    func concurrentLargeResponses() throws {
        let origin = try TLSOrigin()
        defer { origin.server.stop() }
        let big = try MediaFixtures.shared().contents(MediaFixtures.big)
        let transfers = try (0..<8).map { index in
            try Curl.start(
                origin.server.url(MediaFixtures.big),
                ["--cacert", origin.authority.certificate] + (index < 2 ? ["--limit-rate", "1M"] : []), timeout: .seconds(60))
        }
        for transfer in transfers {
            let response = try transfer.finish()
            #expect(response.status == 200, "\(response.stderr)")
            #expect(sameBytes(response.body, big), "\(mismatch(response.body, big))")
        }
    }

    @Test("A large response's head has a record of its own, its body starts in records that fit one TCP segment, then records are 16 KB")
    func recordSizes() throws {
        let origin = try TLSOrigin()
        defer { origin.server.stop() }
        // s_client writes every record header it reads to the message file; -quiet reads until
        // the server closes.
        let messages = Scratch.newFile("s_client-messages.txt")
        let session = try Tool.run(
            "/bin/sh",
            ["-c", "printf 'GET \(MediaFixtures.big) HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | "
                + "openssl s_client -connect 127.0.0.1:\(origin.server.mediaPort) -CAfile \(origin.authority.certificate) -quiet "
                + "-msg -msgfile \(messages.path) > /dev/null"],
            timeout: .seconds(60))
        // Application data records (type 0x17) from the server: "<<< ... RecordHeader" then "    17 03 03 HH LL".
        let lines = try String(contentsOf: messages, encoding: .isoLatin1).components(separatedBy: "\n")
        var sizes: [Int] = []
        for (index, line) in lines.enumerated() where line.hasPrefix("<<<") && line.contains("RecordHeader") && index + 1 < lines.count {
            let bytes = lines[index + 1].split(separator: " ").compactMap { UInt8($0, radix: 16) }
            if bytes.count == 5 && bytes[0] == 0x17 { sizes.append(Int(bytes[3]) << 8 | Int(bytes[4])) }
        }
        // TLS 1.3 adds 17 bytes to a record's plaintext (its type and the AEAD tag).
        let full = 16384 + 17, segment = 1360 + 17
        guard let firstFull = sizes.firstIndex(of: full) else {
            Issue.record("no 16 KB records: \(sizes.prefix(40)) \(session.stderrText)")
            return
        }
        let start = sizes[..<firstFull].suffix(12)
        #expect(start.count == 12 && start.allSatisfy { $0 == segment }, "the body should start in 12 segment-sized records: \(sizes.prefix(firstFull + 2))")
        let head = sizes[..<firstFull].dropLast(12).last ?? 0
        #expect(head > 100 && head < 1000, "the head's record: \(sizes.prefix(firstFull + 2))")
        #expect(sizes.max() == full)
        #expect(sizes.filter { $0 == full }.count >= 100, "a 2.5 MB body flows in 16 KB records")
    }

    @Test("A large file truncated on disk while it is sent over TLS (from its mapping): that response is cut short, the gateway lives on, and the file is served at its new size")
    func fileTruncatedUnderAResponse() throws {
        let root = try Scratch.newDirectory("tls-truncated")
        defer { try? FileManager.default.removeItem(at: root) }
        let url = root.appendingPathComponent("big.m4s")
        var generator = SeededGenerator(seed: 7)
        let content = Data(generator.bytes(24 << 20))
        try content.write(to: url)
        let authority = try TestCertificateAuthority()
        let server = try ServerProcess(
            root: root, environment: ["MARQUEE_FILES_REVALIDATE_MS": "0"], arguments: TLSOrigin.arguments(try authority.issue()))
        defer { server.stop() }

        // A slow reader: the socket buffers hold a few MB, so most of the file is still to be
        // encrypted from the mapping when the file shrinks.
        let slow = try Curl.start(server.url("/big.m4s"), ["--cacert", authority.certificate, "--limit-rate", "4M"], timeout: .seconds(60))
        #expect(try waitUntil(timeout: .seconds(30)) { slow.bytesReceivedSoFar >= 1 << 20 })
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 512 * 1024)
        try handle.close()

        let cut = try slow.finish()
        #expect(cut.termination != .exited(0), "curl should report a transfer closed before its Content-Length")
        #expect(cut.body.count < content.count)
        #expect(sameBytes(cut.body, content.prefix(cut.body.count)), "bytes before the cut differ: \(mismatch(cut.body, content.prefix(cut.body.count)))")
        #expect(server.isRunning, "the gateway died (SIGBUS?) when the file shrank under its mapping")

        let again = try Curl.fetch(server.url("/big.m4s"), ["--cacert", authority.certificate])
        #expect(again.status == 200, "\(again.stderr)")
        #expect(sameBytes(again.body, content.prefix(512 * 1024)), "\(mismatch(again.body, content.prefix(512 * 1024)))")
    }

    @Test("TLS 1.1, garbage and a handshake never finished are refused; plain HTTP gets a 400 that says to use HTTPS; a normal client is served throughout")
    func hostileClients() throws {
        let origin = try TLSOrigin(environment: ["MARQUEE_HTTP_HEADER_TIMEOUT_MS": "1000"])
        defer { origin.server.stop() }

        let stalled = try RawConnection(port: origin.server.mediaPort)
        try stalled.send(Array(TLSRecords.tls11Hello.prefix(9)))

        let old = try RawConnection(port: origin.server.mediaPort)
        try old.send(TLSRecords.tls11Hello)
        let refused = old.readToEnd(timeout: .seconds(10))
        #expect(refused.ending.isClosed)
        #expect(refused.bytes.first == 0x15, "an alert record, got \(refused.bytes.prefix(8))")

        let garbage = try RawConnection(port: origin.server.mediaPort)
        try garbage.send([UInt8](repeating: 0xFF, count: 300))
        #expect(garbage.readToEnd(timeout: .seconds(10)).ending.isClosed)

        let plain = try RawConnection(port: origin.server.mediaPort)
        try plain.send("GET \(MediaFixtures.small) HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let answer = try plain.readResponse()
        #expect(answer.status == 400)
        #expect(answer.bodyText == "this port speaks HTTPS: use an https:// address\n")
        #expect(plain.waitForClose(timeout: .seconds(10)).isClosed)

        let served = try origin.fetch(MediaFixtures.small)
        #expect(served.status == 200, "\(served.stderr)")
        // The unfinished handshake is cut by the header timeout.
        #expect(stalled.waitForClose(timeout: .seconds(20)).isClosed)
        #expect(try origin.handshakeFailures() >= 3)
        #expect(try origin.fetch(MediaFixtures.small).status == 200)
        #expect(try origin.server.metric(#"marquee_connection_timeouts_total{kind="header"}"#) >= 1)
    }

    @Test("ffmpeg plays the HLS and DASH title over HTTPS through signed URLs, path and query mode")
    func signedPlayback() throws {
        let authority = try TestCertificateAuthority()
        let gateway = try SignedGateway(extra: TLSOrigin.arguments(try authority.issue()))
        defer { gateway.server.stop() }
        #expect(gateway.server.url("/").hasPrefix("https://"))
        let token = try gateway.token("/titles/demo/1/")
        for url in [
            gateway.pathURL(token, MediaFixtures.hlsMaster), gateway.pathURL(token, MediaFixtures.dashManifest),
            gateway.queryURL(token, MediaFixtures.hlsMaster),
        ] {
            let played = try PlaybackTests.decode(url)
            #expect(played.termination == .exited(0), "ffmpeg failed on \(url): \(played.stderr)")
            #expect(abs(played.frames(stream: 0) - MediaFixtures.videoFrames) <= 2)
        }
        #expect(try gateway.server.metric(ServerProcess.responses(403)) == 0)
        let unsigned = try Curl.fetch(gateway.server.url(MediaFixtures.hlsSegment), ["--cacert", authority.certificate])
        #expect(unsigned.status == 403)
    }

    @Test("yt-dlp downloads the HLS title over HTTPS through a signed URL, video and audio whole")
    func ytDlpDownloads() throws {
        let authority = try TestCertificateAuthority()
        let gateway = try SignedGateway(extra: TLSOrigin.arguments(try authority.issue()))
        defer { gateway.server.stop() }
        let token = try gateway.token("/titles/demo/1/")
        let folder = try Scratch.newDirectory("yt-dlp")
        let output = folder.appendingPathComponent("title.mp4").path
        // yt-dlp trusts certifi's roots, not a file of ours: it is told not to check, as ffmpeg does by default.
        let download = try Tool.run(
            try PythonEnvironment.python().path,
            ["-m", "yt_dlp", "--no-check-certificates", "--no-part", "--quiet", "--no-warnings", "-o", output,
             gateway.pathURL(token, MediaFixtures.hlsMaster)],
            timeout: .seconds(120))
        #expect(download.termination == .exited(0), "yt-dlp failed: \(download.stderrText) \(download.stdoutText)")
        let played = try PlaybackTests.decode(output)
        #expect(played.termination == .exited(0), "the download does not decode: \(played.stderr)")
        #expect(abs(played.frames(stream: 0) - MediaFixtures.videoFrames) <= 2, "video frames: \(played.frames(stream: 0))")
        #expect(played.frames(stream: 1) >= 250, "audio frames: \(played.frames(stream: 1))")
        #expect(try gateway.server.metric(ServerProcess.responses(403)) == 0)
    }

    @Test("A TLS 1.2 client asking to renegotiate gets a no_renegotiation alert and no second handshake; others are served")
    func renegotiationRefused() throws {
        let origin = try TLSOrigin()
        defer { origin.server.stop() }
        // s_client's `R` line asks for a renegotiation (command letters work without -ign_eof).
        let session = try Tool.run(
            "/bin/sh",
            ["-c", "(sleep 1; printf 'R\\n'; sleep 2) | openssl s_client -tls1_2 -connect 127.0.0.1:\(origin.server.mediaPort) "
                + "-CAfile \(origin.authority.certificate) -servername localhost"],
            timeout: .seconds(30))
        let output = session.stdoutText + session.stderrText
        #expect(output.contains("RENEGOTIATING"), "\(output)")
        #expect(output.contains("no renegotiation"), "the client did not hear the refusal: \(output)")
        #expect(try origin.handshakes() == 1)
        #expect(try origin.fetch(MediaFixtures.small).status == 200)
        #expect(try origin.handshakes() == 2)
    }

    @Test("A flood of connections that start handshakes and stall: the connection cap holds, the header timeout clears them, then clients are served")
    func handshakeFlood() throws {
        let origin = try TLSOrigin(environment: ["MARQUEE_HTTP_MAX_CONNECTIONS": "8", "MARQUEE_HTTP_HEADER_TIMEOUT_MS": "1500"])
        defer { origin.server.stop() }
        let flood = try (0..<24).map { _ in
            let connection = try RawConnection(port: origin.server.mediaPort)
            try connection.send(Array(TLSRecords.tls11Hello.prefix(9)))
            return connection
        }
        // Beyond 8 (4 per loop), newcomers are closed at once; the kernel may queue some a moment.
        #expect(try waitUntil(timeout: .seconds(20)) { try origin.server.metric("marquee_connections_refused_total") >= 16 })
        #expect(try origin.server.metric("marquee_connections_open") <= 8)
        for connection in flood { #expect(connection.waitForClose(timeout: .seconds(20)).isClosed) }
        #expect(try origin.server.metric(#"marquee_connection_timeouts_total{kind="header"}"#) >= 1)
        let served = try origin.fetch(MediaFixtures.small)
        #expect(served.status == 200, "\(served.stderr)")
    }

    @Test("A certificate without its key, or a key of another certificate, stops the start with a clear error")
    func configurationErrors() throws {
        let authority = try TestCertificateAuthority()
        let one = try authority.issue()
        let other = try authority.issue()
        let root = try MediaFixtures.shared().root.path
        let binary = try MarqueeBinary.locate().path
        let base = ["origin", "--root", root, "--listen", "127.0.0.1:0", "--admin", "off", "--no-require-token"]
        let lonely = try Tool.run(binary, base + ["--tls-cert", one.chain])
        #expect(lonely.termination != .exited(0))
        #expect(lonely.stderrText.contains("tls.key_file must come with each certificate"), "\(lonely.stderrText)")
        let mismatched = try Tool.run(binary, base + ["--tls-cert", one.chain, "--tls-key", other.key])
        #expect(mismatched.termination != .exited(0))
        #expect(mismatched.stderrText.contains("does not match"), "\(mismatched.stderrText)")
    }
}

@Suite("HTTPS certificates: SNI and reloads")
struct HTTPSCertificateTests {
    @Test("SNI picks the certificate that covers the name asked for; a name no certificate covers gets the first")
    func serverNameIndication() throws {
        let authority = try TestCertificateAuthority()
        let media = try authority.issue(["media.example", "127.0.0.1"])
        let other = try authority.issue(["other.example"], kind: "rsa")
        let server = try ServerProcess(
            root: try MediaFixtures.shared().root, arguments: TLSOrigin.arguments(media) + TLSOrigin.arguments(other))
        defer { server.stop() }
        func fetch(_ name: String) throws -> CurlResponse {
            try Curl.fetch(
                "https://\(name):\(server.mediaPort)\(MediaFixtures.small)",
                ["--cacert", authority.certificate, "--resolve", "\(name):\(server.mediaPort):127.0.0.1"])
        }
        // curl checks the name in the certificate it gets: each name's fetch passing means SNI chose right.
        for name in ["media.example", "other.example"] {
            let response = try fetch(name)
            #expect(response.status == 200, "\(name): \(response.stderr)")
        }
        let unknown = try fetch("unknown.example")
        #expect(unknown.status == 0)
        #expect(unknown.stderr.contains("media.example") || unknown.stderr.contains("subject name"), "\(unknown.stderr)")
        #expect(try Curl.fetch(server.url(MediaFixtures.small), ["--cacert", authority.certificate]).status == 200)
    }

    /// Replaces `path` the way deployment tools do: a new file renamed over the old.
    static func replace(_ path: String, with source: String) throws {
        let temporary = path + ".new"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.copyItem(atPath: source, toPath: temporary)
        guard rename(temporary, path) == 0 else { throw ToolError(description: "rename onto \(path) failed") }
    }

    @Test("A certificate replaced on disk is served to new connections while a download in progress finishes; a key that does not match keeps the previous certificate")
    func reloadWithoutDroppingConnections() throws {
        let old = try TestCertificateAuthority(name: "Old CA")
        let new = try TestCertificateAuthority(name: "New CA")
        let oldIssued = try old.issue()
        let newIssued = try new.issue()
        let folder = try Scratch.newDirectory("certificates")
        let chain = folder.appendingPathComponent("chain.pem").path
        let key = folder.appendingPathComponent("key.pem").path
        try FileManager.default.copyItem(atPath: oldIssued.chain, toPath: chain)
        try FileManager.default.copyItem(atPath: oldIssued.key, toPath: key)
        let server = try ServerProcess(root: try MediaFixtures.shared().root, arguments: ["--tls-cert", chain, "--tls-key", key])
        defer { server.stop() }
        let big = try MediaFixtures.shared().contents(MediaFixtures.big)

        // 2.5 MB at 400 KB/s: still going when the certificate changes.
        let download = try Curl.start(server.url(MediaFixtures.big), ["--cacert", old.certificate, "--limit-rate", "400K"], timeout: .seconds(60))
        #expect(try waitUntil(timeout: .seconds(20)) { download.bytesReceivedSoFar > 0 })

        try Self.replace(key, with: newIssued.key)
        try Self.replace(chain, with: newIssued.chain)
        let switched = try waitUntil(timeout: .seconds(20)) {
            try Curl.fetch(server.url(MediaFixtures.small), ["--cacert", new.certificate]).status == 200
        }
        #expect(switched, "the new certificate was not served: \(server.stderr.text)")
        #expect(try Curl.fetch(server.url(MediaFixtures.small), ["--cacert", old.certificate]).status == 0)

        let finished = try download.finish()
        #expect(finished.status == 200, "\(finished.stderr)")
        #expect(sameBytes(finished.body, big), "\(mismatch(finished.body, big))")

        // A key of another certificate: the reload fails, says why, and the current one stays.
        try Self.replace(key, with: oldIssued.key)
        let warned = server.stderr.wait(timeout: .seconds(20)) { $0.contains("certificates not reloaded") }
        #expect(warned?.contains("does not match") == true, "\(server.stderr.text)")
        #expect(try Curl.fetch(server.url(MediaFixtures.small), ["--cacert", new.certificate]).status == 200)

        // Mended, and SIGHUP reloads at once.
        try Self.replace(key, with: newIssued.key)
        server.signal(SIGHUP)
        #expect(server.stderr.wait(timeout: .seconds(20)) { $0.components(separatedBy: "certificates reloaded").count >= 3 } != nil, "\(server.stderr.text)")
        #expect(try Curl.fetch(server.url(MediaFixtures.small), ["--cacert", new.certificate]).status == 200)
    }

    @Test("A session ticket resumes on a new connection and across a certificate reload; once its key has rotated out, the next connection is a full handshake")
    func ticketsRotate() throws {
        let authority = try TestCertificateAuthority()
        let issued = try authority.issue()
        let folder = try Scratch.newDirectory("ticket-certificates")
        let chain = folder.appendingPathComponent("chain.pem").path
        let key = folder.appendingPathComponent("key.pem").path
        try FileManager.default.copyItem(atPath: issued.chain, toPath: chain)
        try FileManager.default.copyItem(atPath: issued.key, toPath: key)
        let server = try ServerProcess(
            root: try MediaFixtures.shared().root, environment: ["MARQUEE_TLS_TICKET_KEY_ROTATION_S": "5"],
            arguments: ["--tls-cert", chain, "--tls-key", key])
        defer { server.stop() }
        let session = Scratch.newFile("tls-session").path
        /// One request over a new connection with openssl s_client; its report of the handshake.
        func connect(_ options: String) throws -> String {
            let request = "printf 'GET \(MediaFixtures.small) HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n'"
            let run = try Tool.run(
                "/bin/sh",
                ["-c", "\(request) | openssl s_client -connect 127.0.0.1:\(server.mediaPort) -CAfile \(authority.certificate) -servername localhost -ign_eof \(options)"],
                timeout: .seconds(30))
            return run.stdoutText + run.stderrText
        }
        let first = try connect("-sess_out \(session)")
        #expect(first.contains("New, TLSv1.3"), "\(first)")
        let chained = Scratch.newFile("tls-session-chained").path
        let again = try connect("-sess_in \(session) -sess_out \(chained)")
        #expect(again.contains("Reused, TLSv1.3"), "\(again)")
        #expect(again.contains("HTTP/1.1 200 OK"))
        // A resumed connection gets a fresh ticket, which resumes in turn (clients use each once).
        let third = try connect("-sess_in \(chained)")
        #expect(third.contains("Reused, TLSv1.3"), "no ticket came with the resumed connection: \(third)")

        // A reload of the certificates keeps the ticket keys: a ticket from before still resumes
        // (a key lives at least 5 s; the reload takes well under that).
        let ticket = Scratch.newFile("tls-session-2").path
        _ = try connect("-sess_out \(ticket)")
        let before = server.stderr.text.components(separatedBy: "certificates reloaded").count
        server.signal(SIGHUP)
        #expect(server.stderr.wait(timeout: .seconds(20)) { $0.components(separatedBy: "certificates reloaded").count > before } != nil)
        let afterReload = try connect("-sess_in \(ticket)")
        #expect(afterReload.contains("Reused, TLSv1.3"), "a reload invalidated the tickets: \(afterReload)")

        // Two rotations (5 s each) later the first ticket's key is gone.
        let expired = try waitUntil(timeout: .seconds(60), interval: .milliseconds(500)) { try connect("-sess_in \(session)").contains("New, TLSv1.3") }
        #expect(expired, "a ticket still resumed after its key rotated out")
        #expect(try server.metric("marquee_tls_resumptions_total") >= 2)
    }

    @Test("tls.hsts puts Strict-Transport-Security on every response, refusals included")
    func strictTransportSecurity() throws {
        let origin = try TLSOrigin(environment: ["MARQUEE_TLS_HSTS": "max-age=31536000; includeSubDomains"])
        defer { origin.server.stop() }
        for path in [MediaFixtures.small, "/files/missing.bin"] {
            let response = try origin.fetch(path)
            #expect(response.header("strict-transport-security") == "max-age=31536000; includeSubDomains", "\(path)")
        }
    }

    @Test("A certificate close to its expiry is warned about at start, and every certificate's expiry is a metric")
    func expiryWarnings() throws {
        let authority = try TestCertificateAuthority()
        let soon = try authority.issue(validDays: 2)
        let later = try authority.issue(["origin.example"], validDays: 90)
        let server = try ServerProcess(
            root: try MediaFixtures.shared().root, arguments: TLSOrigin.arguments(soon) + TLSOrigin.arguments(later))
        defer { server.stop() }
        let warned = server.stderr.wait(timeout: .seconds(10)) { $0.contains("the certificate \(soon.chain) expires in") }
        #expect(warned != nil, "no warning for a certificate that expires in 2 days: \(server.stderr.text)")
        #expect(!server.stderr.text.contains(later.chain), "a certificate valid for 90 days was warned about")
        let now = Date().timeIntervalSince1970
        let metrics = try server.metrics()
        let soonExpiry = try #require(metrics["marquee_tls_certificate_expiry_timestamp_seconds{certificate=\"\(soon.chain)\"}"])
        let laterExpiry = try #require(metrics["marquee_tls_certificate_expiry_timestamp_seconds{certificate=\"\(later.chain)\"}"])
        #expect(abs(soonExpiry - (now + 2 * 86_400)) < 600, "\(soonExpiry) is not two days from now")
        #expect(abs(laterExpiry - (now + 90 * 86_400)) < 600, "\(laterExpiry) is not 90 days from now")
    }
}

@Suite("HTTPS redirect listener")
struct HTTPSRedirectTests {
    @Test("The plain listener answers every request with 308 to the same target over HTTPS; curl -L follows it to the file; refusals stay plain and HSTS is only sent over HTTPS")
    func redirects() throws {
        let authority = try TestCertificateAuthority()
        let server = try ServerProcess(
            root: try MediaFixtures.shared().root, environment: ["MARQUEE_TLS_HSTS": "max-age=600"],
            arguments: TLSOrigin.arguments(try authority.issue()) + ["--tls-redirect-listen", "127.0.0.1:0"])
        defer { server.stop() }
        let line = server.stdout.text
        let marker = "redirect http://127.0.0.1:"
        let port = try #require(line.range(of: marker).flatMap { UInt16(line[$0.upperBound...].prefix { $0.isNumber }) }, "\(line)")
        let plain = "http://127.0.0.1:\(port)"

        let redirect = try Curl.fetch(plain + MediaFixtures.small + "?a=1&b=2", ["-H", "Host: media.example:80"])
        #expect(redirect.status == 308)
        #expect(redirect.header("location") == "https://media.example:\(server.mediaPort)\(MediaFixtures.small)?a=1&b=2")
        #expect(redirect.header("strict-transport-security") == nil)

        let followed = try Curl.fetch(plain + MediaFixtures.small, ["-L", "--cacert", authority.certificate])
        #expect(followed.status == 200, "\(followed.stderr)")
        #expect(sameBytes(followed.body, try MediaFixtures.shared().contents(MediaFixtures.small)))
        #expect(followed.header("strict-transport-security") == "max-age=600")

        let hostless = try RawConnection(port: port)
        try hostless.send("GET / HTTP/1.0\r\n\r\n")
        #expect(try hostless.readResponse().status == 400)
        #expect(try server.metric(ServerProcess.responses(308)) >= 2)
    }
}

@Suite("Edge to origin over HTTPS")
struct EdgeUpstreamTLSTests {
    @Test("An edge fills from an https:// origin it verifies, over pooled TLS connections: ffmpeg plays through it, a 2.5 MB file arrives whole; an origin whose certificate it does not trust is refused")
    func edgeFillsOverTLS() throws {
        let fixtures = try MediaFixtures.shared()
        let origin = try TLSOrigin()
        defer { origin.server.stop() }
        let upstream = "https://127.0.0.1:\(origin.server.mediaPort)"
        // The edge serves players over HTTPS too, with a certificate of the same CA.
        let edge = try EdgeTests.SignedEdge(
            upstreams: [upstream], extra: ["--upstream-ca-file", origin.authority.certificate] + TLSOrigin.arguments(try origin.authority.issue()))
        defer { edge.server.stop() }
        let token = try edge.token("/titles/demo/1/")
        try EdgeTests.plays(edge.pathURL(token, MediaFixtures.hlsMaster))

        let bigToken = try edge.token("/files/")
        let big = try Curl.fetch(edge.pathURL(bigToken, MediaFixtures.big), ["--cacert", origin.authority.certificate])
        #expect(big.status == 200, "\(big.stderr)")
        let expected = try fixtures.contents(MediaFixtures.big)
        #expect(sameBytes(big.body, expected), "\(mismatch(big.body, expected))")

        let fetches = try edge.server.metric("marquee_cache_misses_total")
        let sessions = try edge.server.metric("marquee_upstream_tls_handshakes_total")
        #expect(sessions >= 1)
        #expect(sessions < fetches, "\(sessions) TLS sessions for \(fetches) fetches: pooled connections should keep theirs")
        #expect(try origin.handshakes() == sessions)

        // An edge that trusts another CA: the origin's certificate is refused, and nothing is served.
        let stranger = try TestCertificateAuthority(name: "Stranger CA")
        let wary = try EdgeTests.SignedEdge(upstreams: [upstream], extra: ["--upstream-ca-file", stranger.certificate])
        defer { wary.server.stop() }
        let refused = try Curl.fetch(wary.pathURL(try wary.token("/titles/demo/1/"), MediaFixtures.hlsSegment))
        #expect(refused.status == 502 || refused.status == 504, "\(refused.status) \(refused.bodyText)")
        // Players are not told why; the edge's log says it.
        let logged = wary.server.stderr.wait(timeout: .seconds(10)) { $0.contains("certificate was refused") }
        #expect(logged != nil, "the edge's log does not say why: \(wary.server.stderr.text)")
        #expect(try wary.server.metric("marquee_upstream_tls_handshakes_total") == 0)
    }

    /// curl's `--pinnedpubkey` form of the first certificate's key in `file`.
    static func pin(_ file: String) throws -> String {
        let digest = try Tool.run(
            "/bin/sh", ["-c", "openssl x509 -pubkey -noout -in \(file) | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"])
        #expect(digest.termination == .exited(0), "\(digest.stderrText)")
        return "sha256//" + digest.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("With edge.upstream_pins, an edge fills from an origin whose chain carries a pinned key (its own or its CA's) and refuses one whose chain carries none, saying why")
    func pinnedUpstreamKeys() throws {
        let authority = try TestCertificateAuthority()
        let issued = try authority.issue()
        let origin = try ServerProcess(root: try MediaFixtures.shared().root, arguments: TLSOrigin.arguments(issued))
        defer { origin.stop() }
        let upstream = "https://127.0.0.1:\(origin.mediaPort)"
        let stranger = try Self.pin(try TestCertificateAuthority(name: "Stranger CA").certificate)
        let leaf = try Self.pin(issued.chain)
        // curl agrees on the form: it accepts the origin with the leaf's pin.
        let curl = try Curl.fetch(origin.url(MediaFixtures.small), ["--cacert", authority.certificate, "--pinnedpubkey", leaf])
        #expect(curl.status == 200, "\(curl.stderr)")

        for pins in [[leaf], [stranger, try Self.pin(authority.certificate)]] {
            let edge = try EdgeTests.SignedEdge(
                upstreams: [upstream], extra: ["--upstream-ca-file", authority.certificate] + pins.flatMap { ["--upstream-pin", $0] })
            defer { edge.server.stop() }
            let served = try Curl.fetch(edge.pathURL(try edge.token("/titles/demo/1/"), MediaFixtures.hlsSegment))
            #expect(served.status == 200, "pins \(pins): \(served.status) \(served.bodyText)")
        }

        let wary = try EdgeTests.SignedEdge(upstreams: [upstream], extra: ["--upstream-ca-file", authority.certificate, "--upstream-pin", stranger])
        defer { wary.server.stop() }
        let refused = try Curl.fetch(wary.pathURL(try wary.token("/titles/demo/1/"), MediaFixtures.hlsSegment))
        #expect(refused.status == 502 || refused.status == 504, "\(refused.status) \(refused.bodyText)")
        let logged = wary.server.stderr.wait(timeout: .seconds(10)) { $0.contains("none of the pinned public keys") }
        #expect(logged != nil, "the edge's log does not say why: \(wary.server.stderr.text)")
        #expect(try wary.server.metric("marquee_upstream_tls_handshakes_total") == 0)
    }

    @Test("An https:// upstream marked down is probed over TLS and takes its place again once it answers")
    func healthProbeOverTLS() throws {
        // Two origins with the same keys and different bodies, so the answer says who served it.
        func root(_ body: String) throws -> URL {
            let folder = try Scratch.newDirectory("probe-root")
            for n in 0..<40 { try body.write(to: folder.appendingPathComponent("key-\(n).txt"), atomically: true, encoding: .utf8) }
            return folder
        }
        let noStore = ["MARQUEE_CACHE_CONTROL_OTHER": "no-store"]
        let plain = try ServerProcess(root: try root("plain"), environment: noStore)
        defer { plain.stop() }
        let authority = try TestCertificateAuthority()
        let port = try RedisServer.freePort()
        let edge = try EdgeUpstreamTests.PlainEdge(
            ["https://127.0.0.1:\(port)", plain.url("")], config: "edge:\n  upstream_down_ms: 600000\n  health_check_ms: 50\n",
            extra: ["--upstream-ca-file", authority.certificate])
        defer { edge.server.stop() }
        // Nothing listens on the https upstream yet: the keys it is first for fail over, and it is marked down.
        for n in 0..<40 { #expect(try edge.get("/key-\(n).txt").bodyText == "plain") }

        let secure = try ServerProcess(
            root: try root("tls"), environment: noStore, arguments: TLSOrigin.arguments(try authority.issue()) + ["--listen", "127.0.0.1:\(port)"])
        defer { secure.stop() }
        let back = waitUntil(timeout: .seconds(30), interval: .milliseconds(100)) {
            (0..<40).contains { (try? edge.get("/key-\($0).txt").bodyText) == "tls" }
        }
        #expect(back, "the TLS probe never brought the https upstream back (its down time is 10 minutes)")
        #expect(try secure.metric("marquee_tls_handshakes_total") >= 1)
        // A probe in plain HTTP would have been answered 400 (and counted as a failed handshake).
        #expect(try secure.metric("marquee_tls_handshake_failures_total") == 0)
    }
}
