import CLinux
import Glibc
import MarqueeBus
import MarqueeHTTP

/// What the request path learned about the media request being answered, for its delivery
/// record: pointers into the loop's scratch memory and the request buffer, valid only while
/// `respond` runs. The record is started from it when the response begins (`beginRecord`).
struct MediaRequest {
    var active = false
    /// The decoded path without its leading slash: `titles/<title>/<version>/<object>`.
    var path = UnsafeRawBufferPointer(start: nil, count: 0)
    var session = UnsafeRawBufferPointer(start: nil, count: 0)
    var cmcd = UnsafeRawBufferPointer(start: nil, count: 0)
    /// `CountryCode.rawValue` of the geo lookup already made; 0 when none was.
    var country: UInt16 = 0
    var client = IPAddress(high: 0, low: 0)
    var objectSize: Int64 = 0
    var rangeFirst: Int64 = -1
    var rangeLast: Int64 = -1
    var cache = DeliveryRecord.CacheStatus.none
}

/// The parts of a media path, and the client's class: pure functions of bytes, no allocation.
enum MediaPath {
    /// Splits `titles/<title>/<version>/<object path>`; nil unless the path starts with `titles/`
    /// and names a title. A missing version or object gives nil / empty.
    static func split(_ path: UnsafeRawBufferPointer)
        -> (title: UnsafeRawBufferPointer, version: UnsafeRawBufferPointer?, object: UnsafeRawBufferPointer)?
    {
        let prefix = 7  // "titles/"
        guard path.count > prefix, path[0] == 0x74, path[1] == 0x69, path[2] == 0x74, path[3] == 0x6C, path[4] == 0x65,
            path[5] == 0x73, path[6] == 0x2F
        else { return nil }
        var i = prefix
        while i < path.count && path[i] != 0x2F { i += 1 }
        let title = UnsafeRawBufferPointer(rebasing: path[prefix..<i])
        guard !title.isEmpty else { return nil }
        let empty = UnsafeRawBufferPointer(rebasing: path[path.count..<path.count])
        guard i < path.count else { return (title, nil, empty) }
        let versionStart = i + 1
        var j = versionStart
        while j < path.count && path[j] != 0x2F { j += 1 }
        let version = UnsafeRawBufferPointer(rebasing: path[versionStart..<j])
        let object = j < path.count ? UnsafeRawBufferPointer(rebasing: path[(j + 1)...]) : empty
        return (title, version.isEmpty ? nil : version, object)
    }

    /// The coarse class of a client address; the address itself is never recorded.
    static func clientClass(_ address: IPAddress) -> DeliveryRecord.ClientClass {
        if address.high == 0 && address.low == 0 { return .unknown }
        if let v4 = address.ipv4 {
            let a = v4 >> 24
            let b = (v4 >> 16) & 0xFF
            if v4 == 0 { return .unknown }
            if a == 127 { return .loopback }
            if a == 10 || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168) || (a == 169 && b == 254)
                || (a == 100 && (64...127).contains(b))
            {
                return .privateNetwork
            }
            return .publicIPv4
        }
        if address.high == 0 && address.low == 1 { return .loopback }
        // fc00::/7 (unique local) and fe80::/10 (link local).
        if address.high >> 57 == 0x7E || address.high >> 54 == 0x3FA { return .privateNetwork }
        return .publicIPv6
    }

    /// The CMCD text of a request into `scratch` (at least `cmcdScratchBytes`): the `CMCD` query
    /// parameter's value percent-decoded, or else the `CMCD-*` header values joined with `,`.
    /// At most one byte more than the record's room is kept, so the record still sees the cut.
    static func cmcd(query: UnsafeRawBufferPointer, headers: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer),
        into scratch: UnsafeMutableRawPointer) -> Int
    {
        let limit = cmcdScratchBytes
        var n = 0
        if let value = parameter(query) {
            var i = 0
            while i < value.count && n < limit {
                var byte = value[i]
                if byte == 0x25, i + 2 < value.count, let high = hex(value[i + 1]), let low = hex(value[i + 2]) {
                    byte = high << 4 | low
                    i += 2
                }
                scratch.storeBytes(of: byte, toByteOffset: n, as: UInt8.self)
                n += 1
                i += 1
            }
            return n
        }
        // Four calls rather than a loop over an array: an array literal would allocate.
        func append(_ part: UnsafeRawBufferPointer) {
            guard !part.isEmpty else { return }
            if n > 0 && n < limit {
                scratch.storeBytes(of: 0x2C, toByteOffset: n, as: UInt8.self)
                n += 1
            }
            let take = min(part.count, limit - n)
            if take > 0 { (scratch + n).copyMemory(from: part.baseAddress!, byteCount: take) }
            n += take
        }
        append(headers.0)
        append(headers.1)
        append(headers.2)
        append(headers.3)
        return n
    }

    static let cmcdScratchBytes = DeliveryRecordLayout.Text.cmcd.capacity + 1

    /// The value of `CMCD=` in a query, as sent.
    static func parameter(_ query: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var i = 0
        let n = query.count
        while i < n {
            var end = i
            while end < n && query[end] != 0x26 { end += 1 }
            if end - i >= 5 && query[i] == 0x43 && query[i + 1] == 0x4D && query[i + 2] == 0x43 && query[i + 3] == 0x44 && query[i + 4] == 0x3D {
                return UnsafeRawBufferPointer(rebasing: query[(i + 5)..<end])
            }
            i = end + 1
        }
        return nil
    }

    @inline(__always) static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}

/// The body bytes of a response that really went out: what the socket took, less the head.
@inline(__always) func bodyBytesSent(sent: Int64, headBytes: Int32) -> UInt64 {
    UInt64(max(0, sent - Int64(headBytes)))
}

extension EventLoop {
    /// A media request is being answered (its path is decoded): collect what its record needs.
    mutating func noteMediaRequest(_ slot: Int32, _ head: RequestHead, _ buffer: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer) {
        guard records != nil, MediaPath.split(path) != nil else { return }
        media = MediaRequest()
        media.active = true
        media.path = path
        media.client = connections[Int(slot)].peer
        let length = MediaPath.cmcd(
            query: head.query.bytes(in: buffer),
            headers: (head.cmcdRequest.bytes(in: buffer), head.cmcdObject.bytes(in: buffer), head.cmcdStatus.bytes(in: buffer), head.cmcdSession.bytes(in: buffer)),
            into: cmcdScratch)
        media.cmcd = UnsafeRawBufferPointer(start: cmcdScratch, count: length)
    }

    /// The record of the slot's response, after its head in the response's memory.
    @inline(__always) mutating func recordMemory(_ slot: Int32) -> UnsafeMutableRawPointer {
        responseMemory(slot) + Self.headBytes
    }

    /// The request parks for a fetch and is not admitted again when it resumes: keep what the
    /// policy learned (the session's bytes go where the record's session field will be).
    mutating func stageRecord(_ slot: Int32) {
        guard media.active, records != nil else { return }
        let s = Int(slot)
        let length = min(media.session.count, DeliveryRecordLayout.Text.session.capacity)
        if length > 0 {
            (recordMemory(slot) + DeliveryRecordLayout.Text.session.offset).copyMemory(
                from: media.session.baseAddress!, byteCount: length)
        }
        connections[s].stagedSessionLength = UInt8(length)
        connections[s].stagedCountry = media.country
        connections[s].stagedClient = media.client
    }

    /// The request resumed after its fetch: what `stageRecord` kept, the session through the
    /// loop's token scratch (free, as no token is verified for this request).
    mutating func unstageRecord(_ slot: Int32) {
        guard media.active, records != nil else { return }
        let s = Int(slot)
        let length = Int(connections[s].stagedSessionLength)
        if length > 0 {
            tokenScratch.copyMemory(from: recordMemory(slot) + DeliveryRecordLayout.Text.session.offset, byteCount: length)
            media.session = UnsafeRawBufferPointer(start: tokenScratch, count: length)
        }
        media.country = connections[s].stagedCountry
        media.client = connections[s].stagedClient
    }

    /// The response of a media request begins (its head is about to go out): the record is written
    /// into the slot's own memory with everything known now; `endRecord` completes and ships it.
    /// `headBytes` is how much of what will be sent is head rather than body.
    mutating func beginRecord(_ slot: Int32, headBytes: Int32) {
        guard media.active, records != nil else { return }
        media.active = false
        let s = Int(slot)
        guard let parts = MediaPath.split(media.path) else { return }
        let country = media.country == 0 ? (UInt8(0), UInt8(0)) : (UInt8(media.country >> 8), UInt8(media.country & 0xFF))
        DeliveryRecordLayout.write(
            into: recordMemory(slot), endMicroseconds: 0, durationMicroseconds: 0,
            status: connections[s].status.rawValue, bytesSent: 0, objectSize: UInt64(max(0, media.objectSize)),
            rangeFirst: media.rangeFirst, rangeLast: media.rangeLast, aborted: false, cache: media.cache, country: country,
            clientClass: MediaPath.clientClass(media.client), session: media.session.isEmpty ? nil : media.session,
            title: parts.title, version: parts.version, path: parts.object, cmcd: media.cmcd.isEmpty ? nil : media.cmcd)
        connections[s].recording = true
        connections[s].recordStartNanoseconds = nowNanoseconds
        connections[s].sentBytes = 0
        connections[s].headBytes = headBytes
    }

    /// The response ended, in full or cut (`aborted`): completes the slot's record into the ring.
    /// A full ring refuses it (counted there); the writer is woken when the ring is half full.
    mutating func endRecord(_ slot: Int32, aborted: Bool) {
        let s = Int(slot)
        guard connections[s].recording, let records else { return }
        connections[s].recording = false
        guard let out = records.reserve() else { return }
        out.copyMemory(from: recordMemory(slot), byteCount: DeliveryRecordLayout.size)
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let duration = (nowNanoseconds &- connections[s].recordStartNanoseconds) / 1000
        DeliveryRecordLayout.complete(
            out, endMicroseconds: Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000,
            durationMicroseconds: UInt32(clamping: duration),
            bytesSent: bodyBytesSent(sent: connections[s].sentBytes, headBytes: connections[s].headBytes), aborted: aborted)
        let truncated = DeliveryRecordLayout.isTruncated(out)
        records.commit()
        metrics.add(.deliveryRecords)
        if truncated { metrics.add(.deliveryRecordsTruncated) }
        if records.count >= records.capacity / 2 {
            if !recordWakeSent {
                recordWakeSent = true
                recordWriter?.wake()
            }
        } else {
            recordWakeSent = false
        }
    }
}
