/// Makes every URI in an HLS playlist or a DASH manifest carry the viewer's token, so a token given
/// only on `master.m3u8` reaches the child playlists and segments a player fetches by relative URL.
///
/// - Query placement: each URI we serve gets `?token=` (or `&token=`, `&amp;token=` inside XML).
/// - Path placement: relative URIs already inherit `/t/<token>/`; absolute paths (`/titles/...`)
///   and absolute URLs to this host get the `/t/<token>` prefix.
/// URIs to other hosts and other schemes (`data:`, `skd:`) are left alone: the token never leaves
/// for a third party. A DASH `BaseURL` that names a folder keeps its form in query placement (the
/// URLs resolved against it carry the token themselves).
///
/// Works on raw bytes with no allocation: `rewrite(_:into:)` with a nil output only measures, so
/// the caller can size a buffer exactly and run it again.
public struct ManifestRewriter {
    public enum Kind: Sendable { case hls, dash }

    public let placement: URLToken.Placement
    public let token: UnsafeRawBufferPointer
    /// The request's Host, to recognise absolute URLs that point back at this gateway.
    public let host: UnsafeRawBufferPointer

    public init(placement: URLToken.Placement, token: UnsafeRawBufferPointer, host: UnsafeRawBufferPointer) {
        self.placement = placement
        self.token = token
        self.host = host
    }

    public struct Outcome: Equatable, Sendable {
        /// Bytes of the rewritten document.
        public var length: Int
        /// URIs changed; 0 means the original can be served as is.
        public var changes: Int
    }

    /// Rewrites `input` into `output`, or only measures when `output` is nil. Returns nil when
    /// `output` is too small (measure first).
    public func rewrite(_ input: UnsafeRawBufferPointer, kind: Kind, into output: UnsafeMutableRawBufferPointer?) -> Outcome? {
        var out = Emitter(output: output)
        switch kind {
        case .hls: rewriteHLS(input, &out)
        case .dash: rewriteDASH(input, &out)
        }
        return out.overflow ? nil : Outcome(length: out.count, changes: out.changes)
    }

    // MARK: - HLS

    func rewriteHLS(_ input: UnsafeRawBufferPointer, _ out: inout Emitter) {
        var lineStart = 0
        let n = input.count
        while lineStart < n {
            var lineEnd = lineStart
            while lineEnd < n && input[lineEnd] != 0x0A { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > lineStart && input[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            let line = UnsafeRawBufferPointer(rebasing: input[lineStart..<contentEnd])
            if line.isEmpty {
                // blank line
            } else if line[0] != UInt8(ascii: "#") {
                // A URI line (a variant playlist or a segment); surrounding blanks are not part of it.
                var a = 0
                var b = line.count
                while a < b && (line[a] == 0x20 || line[a] == 0x09) { a += 1 }
                while b > a && (line[b - 1] == 0x20 || line[b - 1] == 0x09) { b -= 1 }
                out.append(UnsafeRawBufferPointer(rebasing: line[0..<a]))
                emitURI(UnsafeRawBufferPointer(rebasing: line[a..<b]), xml: false, isFolder: false, &out)
                out.append(UnsafeRawBufferPointer(rebasing: line[b...]))
                lineStart = contentEnd
                out.append(UnsafeRawBufferPointer(rebasing: input[lineStart..<min(lineEnd + 1, n)]))
                lineStart = lineEnd + 1
                continue
            } else if line.starts(with: "#EXT-X-".utf8) {
                rewriteAttributeList(line, &out)
                out.append(UnsafeRawBufferPointer(rebasing: input[contentEnd..<min(lineEnd + 1, n)]))
                lineStart = lineEnd + 1
                continue
            }
            out.append(UnsafeRawBufferPointer(rebasing: input[lineStart..<min(lineEnd + 1, n)]))
            lineStart = lineEnd + 1
        }
    }

    /// `#EXT-X-TAG:NAME=VALUE,NAME="VALUE",...`: rewrites quoted `URI` attributes (EXT-X-MAP,
    /// -MEDIA, -I-FRAME-STREAM-INF, -KEY, -SESSION-KEY, -PART, -PRELOAD-HINT, -RENDITION-REPORT,
    /// -SESSION-DATA all name their resource so). Anything that does not parse is copied unchanged.
    func rewriteAttributeList(_ line: UnsafeRawBufferPointer, _ out: inout Emitter) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            out.append(line)
            return
        }
        var copied = 0
        var i = colon + 1
        let n = line.count
        while i < n {
            let nameStart = i
            while i < n && line[i] != UInt8(ascii: "=") && line[i] != UInt8(ascii: ",") { i += 1 }
            guard i < n, line[i] == UInt8(ascii: "=") else { break }
            let isURI = i - nameStart == 3 && line[nameStart] == UInt8(ascii: "U") && line[nameStart + 1] == UInt8(ascii: "R")
                && line[nameStart + 2] == UInt8(ascii: "I")
            i += 1
            if i < n && line[i] == UInt8(ascii: "\"") {
                let valueStart = i + 1
                var valueEnd = valueStart
                while valueEnd < n && line[valueEnd] != UInt8(ascii: "\"") { valueEnd += 1 }
                guard valueEnd < n else { break }
                if isURI {
                    out.append(UnsafeRawBufferPointer(rebasing: line[copied..<valueStart]))
                    emitURI(UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd]), xml: false, isFolder: false, &out)
                    copied = valueEnd
                }
                i = valueEnd + 1
            } else {
                while i < n && line[i] != UInt8(ascii: ",") { i += 1 }
            }
            guard i < n else { break }
            guard line[i] == UInt8(ascii: ",") else { break }
            i += 1
        }
        out.append(UnsafeRawBufferPointer(rebasing: line[copied...]))
    }

    // MARK: - DASH

    func rewriteDASH(_ input: UnsafeRawBufferPointer, _ out: inout Emitter) {
        let n = input.count
        var copied = 0
        var i = 0
        while i < n {
            guard input[i] == UInt8(ascii: "<") else {
                i += 1
                continue
            }
            let rest = UnsafeRawBufferPointer(rebasing: input[i...])
            if rest.starts(with: "<!--".utf8) {
                i = skip(past: "-->", in: input, from: i + 4)
                continue
            }
            if rest.starts(with: "<![CDATA[".utf8) {
                i = skip(past: "]]>", in: input, from: i + 9)
                continue
            }
            if rest.starts(with: "<?".utf8) || rest.starts(with: "</".utf8) || rest.starts(with: "<!".utf8) {
                i = skip(past: ">", in: input, from: i + 2)
                continue
            }
            // An element start: name, then attributes.
            var p = i + 1
            let nameStart = p
            while p < n && !isXMLSpace(input[p]) && input[p] != UInt8(ascii: ">") && input[p] != UInt8(ascii: "/") { p += 1 }
            let element = localName(UnsafeRawBufferPointer(rebasing: input[nameStart..<p]))
            var selfClosing = false
            while p < n {
                while p < n && isXMLSpace(input[p]) { p += 1 }
                guard p < n else { break }
                if input[p] == UInt8(ascii: ">") { break }
                if input[p] == UInt8(ascii: "/") {
                    selfClosing = true
                    p += 1
                    continue
                }
                let attributeStart = p
                while p < n && input[p] != UInt8(ascii: "=") && !isXMLSpace(input[p]) && input[p] != UInt8(ascii: ">") { p += 1 }
                let attribute = localName(UnsafeRawBufferPointer(rebasing: input[attributeStart..<p]))
                while p < n && isXMLSpace(input[p]) { p += 1 }
                guard p < n, input[p] == UInt8(ascii: "=") else { continue }
                p += 1
                while p < n && isXMLSpace(input[p]) { p += 1 }
                guard p < n, input[p] == UInt8(ascii: "\"") || input[p] == UInt8(ascii: "'") else { break }
                let quote = input[p]
                let valueStart = p + 1
                var valueEnd = valueStart
                while valueEnd < n && input[valueEnd] != quote { valueEnd += 1 }
                guard valueEnd < n else {
                    p = n
                    break
                }
                if Self.isURIAttribute(attribute, of: element) {
                    out.append(UnsafeRawBufferPointer(rebasing: input[copied..<valueStart]))
                    emitURI(UnsafeRawBufferPointer(rebasing: input[valueStart..<valueEnd]), xml: true, isFolder: false, &out)
                    copied = valueEnd
                }
                p = valueEnd + 1
            }
            i = min(p + 1, n)
            // BaseURL and Location carry their URL as text.
            if !selfClosing, p < n, element.elementsEqual("BaseURL".utf8) || element.elementsEqual("Location".utf8) {
                var textEnd = i
                while textEnd < n && input[textEnd] != UInt8(ascii: "<") { textEnd += 1 }
                var a = i
                var b = textEnd
                while a < b && isXMLSpace(input[a]) { a += 1 }
                while b > a && isXMLSpace(input[b - 1]) { b -= 1 }
                if a < b {
                    let isFolder = element.elementsEqual("BaseURL".utf8) && input[b - 1] == UInt8(ascii: "/")
                    out.append(UnsafeRawBufferPointer(rebasing: input[copied..<a]))
                    emitURI(UnsafeRawBufferPointer(rebasing: input[a..<b]), xml: true, isFolder: isFolder, &out)
                    copied = b
                }
                i = textEnd
            }
        }
        out.append(UnsafeRawBufferPointer(rebasing: input[copied...]))
    }

    /// The attributes that hold a resource URL, per element.
    static func isURIAttribute(_ attribute: UnsafeRawBufferPointer, of element: UnsafeRawBufferPointer) -> Bool {
        if element.elementsEqual("SegmentTemplate".utf8) {
            return attribute.elementsEqual("media".utf8) || attribute.elementsEqual("initialization".utf8)
                || attribute.elementsEqual("index".utf8) || attribute.elementsEqual("bitstreamSwitching".utf8)
        }
        if element.elementsEqual("SegmentURL".utf8) {
            return attribute.elementsEqual("media".utf8) || attribute.elementsEqual("index".utf8)
        }
        if element.elementsEqual("Initialization".utf8) || element.elementsEqual("RepresentationIndex".utf8)
            || element.elementsEqual("BitstreamSwitching".utf8)
        {
            return attribute.elementsEqual("sourceURL".utf8)
        }
        return false
    }

    @inline(__always) func isXMLSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    func localName(_ name: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard let colon = name.lastIndex(of: UInt8(ascii: ":")) else { return name }
        return UnsafeRawBufferPointer(rebasing: name[(colon + 1)...])
    }

    func skip(past terminator: StaticString, in input: UnsafeRawBufferPointer, from start: Int) -> Int {
        let t = UnsafeRawBufferPointer(start: terminator.utf8Start, count: terminator.utf8CodeUnitCount)
        var i = start
        while i + t.count <= input.count {
            if UnsafeRawBufferPointer(rebasing: input[i..<(i + t.count)]).elementsEqual(t) { return i + t.count }
            i += 1
        }
        return input.count
    }

    // MARK: - One URI

    /// Writes `uri` as it should reach the player.
    func emitURI(_ uri: UnsafeRawBufferPointer, xml: Bool, isFolder: Bool, _ out: inout Emitter) {
        let target = classify(uri)
        switch (placement, target) {
        case (_, .foreign):
            out.append(uri)
        case (.path, .relative):
            out.append(uri)
        case (.path, .absolutePath):
            if uri.starts(with: "/t/".utf8) {
                out.append(uri)
                return
            }
            out.append("/t/")
            out.append(token)
            out.append(uri)
            out.changes += 1
        case (.path, .sameHost(let pathStart)):
            out.append(UnsafeRawBufferPointer(rebasing: uri[0..<pathStart]))
            out.append("/t/")
            out.append(token)
            out.append(UnsafeRawBufferPointer(rebasing: uri[pathStart...]))
            out.changes += 1
        case (.query, _):
            if isFolder || hasTokenParameter(uri) {
                out.append(uri)
                return
            }
            // Before a fragment, after any query the URI already has.
            var end = uri.count
            var hasQuery = false
            for i in 0..<uri.count {
                if uri[i] == UInt8(ascii: "#") {
                    end = i
                    break
                }
                if uri[i] == UInt8(ascii: "?") { hasQuery = true }
            }
            out.append(UnsafeRawBufferPointer(rebasing: uri[0..<end]))
            if !hasQuery {
                out.append("?token=")
            } else if xml {
                out.append("&amp;token=")
            } else {
                out.append("&token=")
            }
            out.append(token)
            out.append(UnsafeRawBufferPointer(rebasing: uri[end...]))
            out.changes += 1
        }
    }

    enum Target {
        case relative
        case absolutePath
        /// An absolute URL naming this host; the path starts at the offset.
        case sameHost(pathStart: Int)
        /// Another host, another scheme, or nothing to rewrite.
        case foreign
    }

    func classify(_ uri: UnsafeRawBufferPointer) -> Target {
        guard !uri.isEmpty else { return .foreign }
        if uri.starts(with: "//".utf8) { return authorityTarget(uri, authorityStart: 2) }
        if uri[0] == UInt8(ascii: "/") { return .absolutePath }
        // A scheme is letters, digits, + - . before the first ':' that precedes any / ? #.
        for i in 0..<uri.count {
            let b = uri[i]
            if b == UInt8(ascii: ":") {
                guard i > 0 else { return .relative }
                let scheme = UnsafeRawBufferPointer(rebasing: uri[0..<i])
                let isHTTP = scheme.count == 4 && lowercased(scheme, equals: "http") || scheme.count == 5 && lowercased(scheme, equals: "https")
                guard isHTTP, uri.count > i + 3, uri[i + 1] == UInt8(ascii: "/"), uri[i + 2] == UInt8(ascii: "/") else { return .foreign }
                return authorityTarget(uri, authorityStart: i + 3)
            }
            if b == UInt8(ascii: "/") || b == UInt8(ascii: "?") || b == UInt8(ascii: "#") { return .relative }
            let isSchemeByte = (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z") || b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")
                || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
            if !isSchemeByte { return .relative }
        }
        return .relative
    }

    func authorityTarget(_ uri: UnsafeRawBufferPointer, authorityStart: Int) -> Target {
        var end = authorityStart
        while end < uri.count && uri[end] != UInt8(ascii: "/") && uri[end] != UInt8(ascii: "?") && uri[end] != UInt8(ascii: "#") { end += 1 }
        let authority = UnsafeRawBufferPointer(rebasing: uri[authorityStart..<end])
        guard !host.isEmpty, authority.count == host.count, lowercased(authority, equals: host) else { return .foreign }
        guard end < uri.count, uri[end] == UInt8(ascii: "/") else { return .foreign }
        return .sameHost(pathStart: end)
    }

    func lowercased(_ a: UnsafeRawBufferPointer, equals b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count where a[i] | 0x20 != b[i] | 0x20 { return false }
        return true
    }

    func lowercased(_ a: UnsafeRawBufferPointer, equals b: StaticString) -> Bool {
        lowercased(a, equals: UnsafeRawBufferPointer(start: b.utf8Start, count: b.utf8CodeUnitCount))
    }

    /// Whether the URI's query already has a `token` parameter (authored signed, or rewritten).
    func hasTokenParameter(_ uri: UnsafeRawBufferPointer) -> Bool {
        guard let q = uri.firstIndex(of: UInt8(ascii: "?")) else { return false }
        var i = q + 1
        while i + 6 <= uri.count {
            if UnsafeRawBufferPointer(rebasing: uri[i..<(i + 6)]).elementsEqual("token=".utf8) { return true }
            while i < uri.count && uri[i] != UInt8(ascii: "&") && uri[i] != UInt8(ascii: ";") { i += 1 }
            i += 1
            if i < uri.count && uri[i - 1] == UInt8(ascii: "&") && uri.count - i >= 4
                && UnsafeRawBufferPointer(rebasing: uri[i..<(i + 4)]).elementsEqual("amp;".utf8)
            {
                i += 4
            }
        }
        return false
    }
}

/// Appends to the output buffer, or only counts when there is none.
struct Emitter {
    let output: UnsafeMutableRawBufferPointer?
    var count = 0
    var changes = 0
    var overflow = false

    init(output: UnsafeMutableRawBufferPointer?) { self.output = output }

    @inline(__always) mutating func append(_ bytes: UnsafeRawBufferPointer) {
        defer { count += bytes.count }
        guard let output, !bytes.isEmpty else { return }
        guard count + bytes.count <= output.count else {
            overflow = true
            return
        }
        (output.baseAddress! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    @inline(__always) mutating func append(_ literal: StaticString) {
        append(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }
}
