import Glibc
import MarqueeHTTP
import MarqueeTokens

extension EventLoop {
    /// Sends a playlist or manifest rewritten so every URI in it carries the viewer's token
    /// (`ManifestRewriter`). Returns false when nothing needs rewriting and the file can be served
    /// as is: always the case for path placement with relative URIs, which inherit `/t/<token>/`.
    ///
    /// The rewritten body differs per viewer, so it is sent `private, no-cache` without validators,
    /// and a Range header is ignored (RFC 9110 lets a server send the whole representation).
    mutating func serveRewrittenManifest(
        _ slot: Int32, _ head: RequestHead, _ buffer: UnsafeRawBufferPointer, entry e: Int32, placement: URLToken.Placement,
        token: UnsafeRawBufferPointer, origin: UnsafeRawBufferPointer
    ) -> Bool {
        let entry = files.entries[Int(e)]
        if placement == .path && entry.needsPathRewrite == 0 { return false }
        let size = Int(entry.size)
        // Small manifests are in memory; a large one is read in (not taken from its mapping, which
        // a truncation under the rewriter would turn into zeros: the copy costs less than the
        // rewrite anyway).
        var source = UnsafeRawPointer(entry.body)
        var readBuffer: Int32 = -1
        if source == nil {
            readBuffer = bodies.take(atLeast: max(size, 1))
            let target = bodies.buffer(readBuffer)
            guard pread(entry.fd, target.baseAddress, size, 0) == size else {
                bodies.give(readBuffer)
                return false
            }
            source = UnsafeRawPointer(target.baseAddress)
        }
        defer { if readBuffer >= 0 { bodies.give(readBuffer) } }
        let input = UnsafeRawBufferPointer(start: source, count: size)
        let kind: ManifestRewriter.Kind = entry.mediaType == .hlsPlaylist ? .hls : .dash
        let rewriter = ManifestRewriter(placement: placement, token: token, host: head.host.bytes(in: buffer))
        guard let measured = rewriter.rewrite(input, kind: kind, into: nil) else { return false }
        if placement == .path { files.entries[Int(e)].needsPathRewrite = measured.changes > 0 ? 1 : 0 }
        guard measured.changes > 0 else { return false }

        let b = bodies.take(atLeast: measured.length)
        let out = UnsafeMutableRawBufferPointer(rebasing: bodies.buffer(b)[0..<measured.length])
        _ = rewriter.rewrite(input, kind: kind, into: out)
        files.release(e)

        var w = headWriter(slot)
        w.append(HTTPStatus.ok.statusLine)
        writeCommonHeaders(&w, slot, origin: origin, exposeHeaders: true)
        w.append("Content-Type: ")
        w.append(entry.mediaType.contentType)
        w.append("\r\nContent-Length: ")
        w.append(decimal: Int64(measured.length))
        w.append("\r\nCache-Control: private, no-cache\r\n\r\n")
        connections[Int(slot)].status = .ok
        connections[Int(slot)].headCount = Int32(w.count)
        // The representation sent is the rewritten one.
        media.objectSize = Int64(measured.length)
        if head.method == .head {
            bodies.give(b)
            sendHead(slot, body: nil, bodyLength: 0)
        } else {
            connections[Int(slot)].body = b
            sendHead(slot, body: UnsafeRawPointer(out.baseAddress!), bodyLength: measured.length)
        }
        return true
    }
}
