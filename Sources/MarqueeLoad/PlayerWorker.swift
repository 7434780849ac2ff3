import CLinux
import CURing
import Glibc
import Histogram
import MarqueeManifests
import MarqueeRing
import Synchronization

/// One thread's viewers on its own ring (`PlayerLoad`). Each viewer is a connection, the request
/// it is making, and its `PlayerModel`; viewers that wait for buffer room sit in a timer heap that
/// a 10 ms tick drains.
struct PlayerWorker: ~Copyable {
    enum Step: UInt8 {
        case connect = 1, send, receive, tick
    }

    /// What a viewer's request in flight is for.
    enum Want: Equatable {
        case master
        case playlist(rendition: Int)
        case initialization(rendition: Int)
        case segment(index: Int, rendition: Int)
        /// The separate audio track: its playlist, its init segment, its segment `index`.
        case audioPlaylist
        case audioInitialization
        case audioSegment(index: Int)
    }

    struct Viewer {
        var fd: Int32 = -1
        var generation: UInt16 = 0
        var startNanoseconds: UInt64 = 0
        var started = false
        var finished = false
        var want = Want.master
        var sent = 0
        var requestLength = 0
        var requestStart: UInt64 = 0
        var reader = ResponseReader(maxHeadBytes: PlayerWorker.areaBytes)
        /// Playlist bodies, kept while they arrive; segment bodies are only counted.
        var body: [UInt8] = []
        var bodyBytes = 0
        /// The renditions it can pick, their media once known, and whether each one's init
        /// segment was fetched.
        var renditions: [PlayableRendition] = []
        var initialized: [Bool] = []
        var model: PlayerModel?
        var segmentStart: UInt64 = 0
        /// The audio track it plays (when separate), whether its init segment was fetched, the
        /// next audio segment, and the video segment whose audio is being fetched.
        var audio: AudioTrack?
        var audioInitialized = false
        var audioNext = 0
        var lastVideoIndex = -1
        var videoIndex = 0
        var videoRendition = 0
        /// Bytes of the video segment and its audio so far: the model's download is both.
        var segmentBytes = 0
        var sessionID = ""
        /// Its timer is a retry of the request that failed.
        var retrying = false
        /// The request went out on a connection an earlier one used, and how much of its answer came.
        var onKeptConnection = false
        var responseBytes = 0
        /// Stalls of its model already counted in the live progress.
        var stallsPublished = 0
        /// Stalls of its model when its last request went out (CMCD `bs` tells of those since).
        var stallsAtLastRequest = 0
    }

    static let areaBytes = 16 * 1024
    static let requestBytes = 4 * 1024
    static let retryMilliseconds: UInt64 = 1000

    unowned let load: PlayerLoad
    let count: Int
    let firstViewer: Int
    let start: UInt64
    let deadline: UInt64
    let progress: LiveProgress
    let ring: Ring
    let viewers: UnsafeMutablePointer<Viewer>
    let areas: UnsafeMutableRawPointer
    let requests: UnsafeMutableRawPointer
    let address: UnsafeMutablePointer<sockaddr_storage>
    let tickSpec: UnsafeMutablePointer<__kernel_timespec>
    let completions: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    /// (due ns, viewer), a binary min-heap; a viewer has at most one timer at a time.
    var timers: [(due: UInt64, viewer: Int)] = []
    var results = PlayerResults()
    var now: UInt64 = 0
    /// Segment latency since the progress line last read it, and when it does next.
    var interval = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .two)
    var nextPublish: UInt64 = 0
    var manifests = ManifestCache()

    init(load: PlayerLoad, viewers count: Int, firstViewer: Int, start: UInt64, deadline: UInt64, progress: LiveProgress) throws(LoadTarget.Problem) {
        do {
            ring = try Ring(entries: UInt32(max(64, min(4096, count * 2 + 8))))
        } catch {
            throw LoadTarget.Problem(description: "cannot set up an io_uring: \(error)")
        }
        self.load = load
        self.count = count
        self.firstViewer = firstViewer
        self.start = start
        self.deadline = deadline
        self.progress = progress
        viewers = .allocate(capacity: max(1, count))
        viewers.initialize(repeating: Viewer(), count: max(1, count))
        areas = .allocate(byteCount: max(1, count) * Self.areaBytes, alignment: 64)
        requests = .allocate(byteCount: max(1, count) * Self.requestBytes, alignment: 64)
        address = .allocate(capacity: 1)
        address.initialize(to: load.target.address)
        tickSpec = .allocate(capacity: 1)
        tickSpec.initialize(to: __kernel_timespec(tv_sec: 0, tv_nsec: 10_000_000))
        completions = .allocate(capacity: 256)
    }

    deinit {
        for i in 0..<count where viewers[i].fd >= 0 { close(viewers[i].fd) }
        ring.close()
        viewers.deinitialize(count: max(1, count))
        viewers.deallocate()
        areas.deallocate()
        requests.deallocate()
        address.deallocate()
        tickSpec.deallocate()
        completions.deallocate()
    }

    @inline(__always) static func userData(_ step: Step, _ index: Int, _ generation: UInt16) -> UInt64 {
        UInt64(step.rawValue) << 56 | UInt64(generation) << 32 | UInt64(UInt32(index))
    }

    // MARK: - The loop

    mutating func run() -> PlayerResults {
        now = monotonicNanoseconds()
        let total = max(1, load.viewers)
        for i in 0..<count {
            // Viewers start evenly over the ramp, in the order of their global number.
            let offset = UInt64(load.rampSeconds * 1e9 * Double(firstViewer + i) / Double(total))
            let n = firstViewer + i
            viewers[i].sessionID = load.sessionIDs.isEmpty ? Self.sessionID(n) : load.sessionIDs[n % load.sessionIDs.count]
            schedule(i, at: start + offset)
        }
        armTick()
        while now < deadline {
            _ = ring.submitAndWait(1)
            now = monotonicNanoseconds()
            while true {
                let n = ring.peekBatch(into: completions, count: 256)
                if n == 0 { break }
                for k in 0..<Int(n) {
                    let cqe = completions[k]!
                    handle(cqe.pointee.user_data, cqe.pointee.res)
                }
                ring.advance(n)
            }
        }
        for i in 0..<count { finishViewer(i) }
        return results
    }

    mutating func handle(_ data: UInt64, _ result: Int32) {
        guard let step = Step(rawValue: UInt8(truncatingIfNeeded: data >> 56)) else { return }
        if step == .tick {
            onTick()
            return
        }
        let i = Int(UInt32(truncatingIfNeeded: data))
        guard i < count, viewers[i].generation == UInt16(truncatingIfNeeded: data >> 32), !viewers[i].finished else { return }
        switch step {
        case .connect:
            guard result >= 0 else {
                results.kinds[kindIndex(viewers[i].want)].connectFailures += 1
                return retryLater(i, dropping: true)
            }
            submitSend(i)
        case .send:
            if result <= 0 && viewers[i].onKeptConnection && viewers[i].sent == 0 {
                // As for a receive: a kept connection the server closed; again, on a new one.
                dropConnection(i)
                viewers[i].onKeptConnection = false
                return connect(i)
            }
            guard result > 0 else {
                results.kinds[kindIndex(viewers[i].want)].sendFailures += 1
                return retryLater(i, dropping: true)
            }
            viewers[i].sent += Int(result)
            if viewers[i].sent < viewers[i].requestLength { submitSend(i) } else { receive(i, offset: 0) }
        case .receive:
            onReceive(i, result)
        case .tick:
            break
        }
    }

    // MARK: - Requests

    /// Asks for `want` on the viewer's connection (opening one when it has none).
    mutating func request(_ i: Int, _ want: Want) {
        guard let (path, bytes) = target(i, want) else {
            return unplayable(i, "a request without a URI")
        }
        guard path.hasPrefix("/") else {
            results.contentErrors["a URI on another host (not followed)", default: 0] += 1
            return finishViewer(i)
        }
        viewers[i].want = want
        viewers[i].sent = 0
        viewers[i].body.removeAll(keepingCapacity: true)
        viewers[i].bodyBytes = 0
        viewers[i].reader.reset()
        var w = RequestWriter(base: requests + i * Self.requestBytes, capacity: Self.requestBytes)
        w.append("GET ")
        w.append(path)
        w.append(" HTTP/1.1\r\nHost: ")
        w.append(load.target.hostField)
        w.append("\r\nUser-Agent: marquee-loadtest\r\n")
        if let bytes {
            w.append("Range: bytes=\(bytes.lowerBound)-\(bytes.upperBound - 1)\r\n")
        }
        writeCMCD(i, want, into: &w)
        w.append("\r\n")
        guard !w.overflowed else {
            results.contentErrors["request longer than \(Self.requestBytes) bytes", default: 0] += 1
            return finishViewer(i)
        }
        viewers[i].requestLength = w.count
        viewers[i].requestStart = now
        viewers[i].responseBytes = 0
        viewers[i].onKeptConnection = viewers[i].fd >= 0
        if viewers[i].fd >= 0 { submitSend(i) } else { connect(i) }
    }

    /// The request target for `want` (resolved against the manifest that named it) and its bytes.
    func target(_ i: Int, _ want: Want) -> (String, Range<UInt64>?)? {
        switch want {
        case .master:
            return (master(i), nil)
        case .playlist(let r):
            return viewers[i].renditions[r].playlist.map { ($0, nil) }
        case .initialization(let r):
            let rendition = viewers[i].renditions[r]
            return rendition.media?.initialization.map { (rendition.target($0.uri), $0.bytes) }
        case .segment(let index, let r):
            let rendition = viewers[i].renditions[r]
            return rendition.media.map { (rendition.target($0.segments[index].uri), $0.segments[index].bytes) }
        case .audioPlaylist:
            return viewers[i].audio?.playlist.map { ($0, nil) }
        case .audioInitialization:
            guard let audio = viewers[i].audio else { return nil }
            return audio.media?.initialization.map { (audio.target($0.uri), $0.bytes) }
        case .audioSegment(let index):
            guard let audio = viewers[i].audio, let media = audio.media else { return nil }
            return (audio.target(media.segments[index].uri), media.segments[index].bytes)
        }
    }

    /// The viewer's own URL (its signed playback URL with `--api`), else the load's.
    func master(_ i: Int) -> String {
        load.masterPaths.isEmpty ? load.target.path : load.masterPaths[(firstViewer + i) % load.masterPaths.count]
    }

    /// CTA-5004 keys as headers: the object, the request, the session, the status.
    mutating func writeCMCD(_ i: Int, _ want: Want, into w: inout RequestWriter) {
        let v = viewers[i]
        // `bs` (CTA-5004): the buffer ran dry at some point since the previous request, whether
        // the stall is still on or has already ended.
        let starved = v.model.map { $0.phase == .stalled || $0.stalls > v.stallsAtLastRequest } ?? false
        if let stalls = v.model?.stalls { viewers[i].stallsAtLastRequest = stalls }
        var object: [String] = []
        var request: [String] = []
        switch want {
        case .master, .playlist, .audioPlaylist: object.append("ot=m")
        case .audioInitialization: object.append("ot=i")
        case .audioSegment(let index):
            if let d = v.audio?.media?.durationsMs[index] { object.append("d=\(d)") }
            object.append("ot=a")
        case .initialization(let r):
            object.append("br=\(v.renditions[r].bandwidth / 1000)")
            object.append("ot=i")
        case .segment(let index, let r):
            object.append("br=\(v.renditions[r].bandwidth / 1000)")
            if let model = v.model { object.append("d=\(model.segmentDurationsMs[index])") }
            object.append(v.renditions[r].audio == nil ? "ot=av" : "ot=v")
        }
        if let model = v.model {
            request.append("bl=\(model.bufferMs / 100 * 100)")
            request.append("mtp=\(Int(model.estimate / 1000) / 100 * 100)")
            if model.phase == .starting || model.phase == .stalled || model.phase == .seeking { request.append("su") }
        }
        object.sort()
        if !object.isEmpty { w.append("CMCD-Object: \(object.joined(separator: ","))\r\n") }
        if !request.isEmpty { w.append("CMCD-Request: \(request.joined(separator: ","))\r\n") }
        w.append("CMCD-Session: cid=\"\(load.contentID)\",sf=h,sid=\"\(v.sessionID)\",st=v\r\n")
        if starved { w.append("CMCD-Status: bs\r\n") }
    }

    mutating func connect(_ i: Int) {
        let fd = socket(Int32(load.target.address.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            results.kinds[kindIndex(viewers[i].want)].connectFailures += 1
            return retryLater(i, dropping: true)
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        viewers[i].fd = fd
        let sqe = ring.submissionEntry()
        let length = load.target.addressLength
        address.withMemoryRebound(to: sockaddr.self, capacity: 1) { io_uring_prep_connect(sqe, fd, $0, length) }
        io_uring_sqe_set_data64(sqe, Self.userData(.connect, i, viewers[i].generation))
    }

    mutating func submitSend(_ i: Int) {
        let sqe = ring.submissionEntry()
        let sent = viewers[i].sent
        io_uring_prep_send(sqe, viewers[i].fd, requests + i * Self.requestBytes + sent, viewers[i].requestLength - sent, Int32(MSG_NOSIGNAL))
        io_uring_sqe_set_data64(sqe, Self.userData(.send, i, viewers[i].generation))
    }

    mutating func receive(_ i: Int, offset: Int) {
        let sqe = ring.submissionEntry()
        io_uring_prep_recv(sqe, viewers[i].fd, areas + i * Self.areaBytes + offset, Self.areaBytes - offset, 0)
        io_uring_sqe_set_data64(sqe, Self.userData(.receive, i, viewers[i].generation))
    }

    // MARK: - Responses

    mutating func onReceive(_ i: Int, _ result: Int32) {
        let area = UnsafeMutableRawBufferPointer(start: areas + i * Self.areaBytes, count: Self.areaBytes)
        let keepsBody: Bool
        switch viewers[i].want {
        case .master, .playlist, .audioPlaylist: keepsBody = true
        default: keepsBody = false
        }
        let step: ResponseReader.Step
        if result <= 0 && viewers[i].onKeptConnection && viewers[i].responseBytes == 0 {
            // The server closed the kept connection while it was idle: the request goes again at
            // once on a new one, as a browser does (not a failure, nor a second's wait).
            dropConnection(i)
            viewers[i].onKeptConnection = false
            viewers[i].sent = 0
            return connect(i)
        }
        if result > 0 {
            viewers[i].responseBytes += Int(result)
            results.kinds[kindIndex(viewers[i].want)].bytes += UInt64(result)
            var collected = viewers[i].body
            var counted = viewers[i].bodyBytes
            viewers[i].body = []
            step = viewers[i].reader.received(Int(result), in: area) { data in
                counted += data.count
                if keepsBody && collected.count + data.count <= 4 << 20 { collected.append(contentsOf: data) }
            }
            viewers[i].body = collected
            viewers[i].bodyBytes = counted
        } else {
            step = viewers[i].reader.ended()
        }
        switch step {
        case .receive(let offset):
            receive(i, offset: offset)
        case .complete(let status, let reusable):
            let want = viewers[i].want
            let latency = max(1, (now &- viewers[i].requestStart) / 1000)
            let k = kindIndex(want)
            results.kinds[k].requests += 1
            results.kinds[k].statuses[min(status, 599)] += 1
            _ = results.kinds[k].latency.record(latency)
            if case .segment = want { _ = interval.record(latency) }
            progress.requests.add(1, ordering: .relaxed)
            if !reusable { dropConnection(i) }
            if status != 200 && !(status == 206 && isRanged(i, want)) {
                progress.errors.add(1, ordering: .relaxed)
                if case .segment = want { viewers[i].model?.segmentFailed() }
                return retryLater(i, dropping: false)
            }
            answered(i, want)
        case .failed(let why):
            results.kinds[kindIndex(viewers[i].want)].readFailures[why, default: 0] += 1
            progress.errors.add(1, ordering: .relaxed)
            if case .segment = viewers[i].want { viewers[i].model?.segmentFailed() }
            retryLater(i, dropping: true)
        }
    }

    /// A 200 (or a 206 to a range request) for `want` is whole: the viewer goes on.
    mutating func answered(_ i: Int, _ want: Want) {
        switch want {
        case .master:
            let master = master(i)
            switch manifests.read(viewers[i].body) {
            case .unplayable(let why):
                return unplayable(i, why)
            case .variants(let variants):
                // Each rendition's media resolves against its own playlist's folder.
                let renditions = variants.map { variant in
                    let playlist = HLSPlaylist.resolve(variant.uri, against: master)
                    let audio = variant.audio.map { uri in
                        let path = HLSPlaylist.resolve(uri, against: master)
                        return AudioTrack(playlist: path, mediaBase: folder(of: path), media: nil)
                    }
                    return PlayableRendition(bandwidth: variant.bandwidth, playlist: playlist, mediaBase: folder(of: playlist), audio: audio)
                }
                viewers[i].renditions = renditions
                viewers[i].initialized = Array(repeating: false, count: renditions.count)
                let r = PlayerModel.initialRendition(bandwidths: renditions.map(\.bandwidth), settings: load.settings)
                request(i, .playlist(rendition: r))
            case .media(let media):
                // The URL named a media playlist: one rendition, itself.
                viewers[i].renditions = [PlayableRendition(bandwidth: 1, playlist: master, mediaBase: folder(of: master))]
                viewers[i].initialized = [false]
                loaded(i, media, rendition: 0)
                drive(i)
            case .presentation(let found, let audio):
                let base = folder(of: master)
                func resolved(_ relative: String) -> String { relative.hasPrefix("/") || relative.contains(":") ? relative : base + relative }
                let track = audio.map { AudioTrack(playlist: nil, mediaBase: resolved($0.base), media: $0.media) }
                viewers[i].renditions = found.map { rendition in
                    PlayableRendition(bandwidth: rendition.bandwidth, playlist: nil, mediaBase: resolved(rendition.base), media: rendition.media, audio: track)
                }
                viewers[i].initialized = Array(repeating: false, count: found.count)
                guard let first = found.first?.media else { return unplayable(i, "a DASH manifest without renditions") }
                startModel(i, durationsMs: first.durationsMs)
                drive(i)
            }
        case .playlist(let r):
            switch manifests.read(viewers[i].body) {
            case .media(let media):
                loaded(i, media, rendition: r)
                drive(i)
            case .unplayable(let why):
                unplayable(i, why)
            case .variants, .presentation:
                unplayable(i, "a variant URI named a master playlist or a DASH manifest")
            }
        case .audioPlaylist:
            switch manifests.read(viewers[i].body) {
            case .media(let media):
                viewers[i].audio?.media = media
                drive(i)
            case .unplayable(let why):
                unplayable(i, why)
            case .variants, .presentation:
                unplayable(i, "an audio URI named a master playlist or a DASH manifest")
            }
        case .audioInitialization:
            viewers[i].audioInitialized = true
            drive(i)
        case .audioSegment(let index):
            viewers[i].segmentBytes += viewers[i].bodyBytes
            viewers[i].audioNext = index + 1
            fetchAudioOrFinish(i)
        case .initialization(let r):
            viewers[i].initialized[r] = true
            drive(i)
        case .segment:
            viewers[i].segmentBytes += viewers[i].bodyBytes
            fetchAudioOrFinish(i)
        }
    }

    /// The video segment is in: the audio segments covering its media time follow (on the same
    /// connection), then the model hears of the whole download.
    mutating func fetchAudioOrFinish(_ i: Int) {
        let r = viewers[i].videoRendition
        if viewers[i].renditions[r].audio != nil, let audio = viewers[i].audio?.media, let video = viewers[i].renditions[r].media {
            let index = viewers[i].videoIndex
            let end = video.startsMs[index] + video.durationsMs[index]
            let next = viewers[i].audioNext
            if next < audio.segments.count && audio.startsMs[next] < end { return request(i, .audioSegment(index: next)) }
        }
        let elapsed = Int64(max(1, (now &- viewers[i].segmentStart) / 1_000_000))
        viewers[i].model?.advance(toMs: elapsedMs(i))
        viewers[i].model?.segmentArrived(bytes: viewers[i].segmentBytes, elapsedMs: elapsed)
        drive(i)
    }

    /// The server's answer cannot be played: the viewer stops, counted under `why`.
    mutating func unplayable(_ i: Int, _ why: String) {
        results.contentErrors[why, default: 0] += 1
        finishViewer(i)
    }

    func isRanged(_ i: Int, _ want: Want) -> Bool {
        guard case .master = want else { return target(i, want)?.1 != nil }
        return false
    }

    /// A rendition's media playlist arrived; the model starts with the first one.
    mutating func loaded(_ i: Int, _ media: RenditionMedia, rendition r: Int) {
        viewers[i].renditions[r].media = media
        if viewers[i].model == nil { startModel(i, durationsMs: media.durationsMs) }
    }

    mutating func startModel(_ i: Int, durationsMs: [Int64]) {
        // The time the viewer has left in the run bounds when its behaviours can happen.
        let remainingMs = Int64((deadline &- viewers[i].startNanoseconds) / 1_000_000)
        let script = load.behaviours.script(viewer: firstViewer + i, remainingMs: remainingMs)
        viewers[i].model = PlayerModel(
            bandwidths: viewers[i].renditions.map(\.bandwidth), segmentDurationsMs: durationsMs, settings: load.settings, script: script)
    }

    /// Asks the model what next, and does it: a playlist or init segment it lacks, the segment, a wait.
    mutating func drive(_ i: Int) {
        guard var model = viewers[i].model else { return }
        model.advance(toMs: elapsedMs(i))
        let next = model.next()
        viewers[i].model = model
        publishStalls(i)
        switch next {
        case .done:
            finishViewer(i)
        case .wait(let until):
            if let until { schedule(i, at: viewers[i].startNanoseconds + UInt64(until) * 1_000_000) }
        case .fetch(let index, let r):
            guard let media = viewers[i].renditions[r].media else {
                viewers[i].model?.requestDeferred()
                return request(i, .playlist(rendition: r))
            }
            if media.initialization != nil && !viewers[i].initialized[r] {
                viewers[i].model?.requestDeferred()
                return request(i, .initialization(rendition: r))
            }
            if let wanted = viewers[i].renditions[r].audio {
                if viewers[i].audio.map({ !$0.isSame(as: wanted) }) ?? true {
                    viewers[i].audio = wanted
                    viewers[i].audioInitialized = false
                    viewers[i].lastVideoIndex = -1
                }
                guard let audio = viewers[i].audio?.media else {
                    viewers[i].model?.requestDeferred()
                    return request(i, .audioPlaylist)
                }
                if audio.initialization != nil && !viewers[i].audioInitialized {
                    viewers[i].model?.requestDeferred()
                    return request(i, .audioInitialization)
                }
            }
            guard index < media.segments.count else {
                // A rendition listing fewer segments than the first: treat as the end.
                results.contentErrors["renditions list different numbers of segments", default: 0] += 1
                return finishViewer(i)
            }
            if let audio = viewers[i].audio?.media, index != viewers[i].lastVideoIndex + 1 {
                // A start or a seek: the audio restarts at the video's media time.
                viewers[i].audioNext = audio.segment(endingAfter: media.startsMs[index])
            }
            viewers[i].lastVideoIndex = index
            viewers[i].videoIndex = index
            viewers[i].videoRendition = r
            viewers[i].segmentBytes = 0
            viewers[i].segmentStart = now
            request(i, .segment(index: index, rendition: r))
        }
    }

    // MARK: - Viewers

    mutating func begin(_ i: Int) {
        progress.activeViewers.add(1, ordering: .relaxed)
        viewers[i].started = true
        viewers[i].startNanoseconds = now
        request(i, .master)
    }

    func elapsedMs(_ i: Int) -> Int64 { Int64((now &- viewers[i].startNanoseconds) / 1_000_000) }

    /// The request failed: the same one again in a second (as players retry), on a new
    /// connection when this one broke.
    mutating func retryLater(_ i: Int, dropping: Bool) {
        if dropping { dropConnection(i) }
        viewers[i].retrying = true
        schedule(i, at: now + Self.retryMilliseconds * 1_000_000)
    }

    mutating func dropConnection(_ i: Int) {
        if viewers[i].fd >= 0 {
            close(viewers[i].fd)
            viewers[i].fd = -1
        }
        viewers[i].generation &+= 1
    }

    /// The viewer stops (its title ended, or the run did): what it saw goes into the results.
    mutating func finishViewer(_ i: Int) {
        guard !viewers[i].finished else { return }
        viewers[i].finished = true
        dropConnection(i)
        guard viewers[i].started else { return }
        viewers[i].model?.advance(toMs: elapsedMs(i))
        guard let model = viewers[i].model, let startup = model.startupMs else {
            progress.activeViewers.subtract(1, ordering: .relaxed)
            if viewers[i].model?.abandoned == true { results.abandonedBeforeStart += 1 } else { results.viewersNeverPlayed += 1 }
            return
        }
        if model.paused { results.pauses += 1 }
        if model.seeked { results.seeks += 1 }
        if let wait = model.seekWaitMs { results.seekWaitMs.append(wait) }
        if model.abandoned { results.abandoned += 1 }
        results.viewersStarted += 1
        results.startupMs.append(startup)
        results.rebufferRatios.append(model.rebufferRatio)
        results.bitrates.append(model.averageBitrate)
        results.stalls += model.stalls
        results.stalledMs += model.stalledMs
        results.switches += model.switches
        if !load.sessionIDs.isEmpty {
            results.sessions.append(.init(sessionID: viewers[i].sessionID, stalls: model.stalls, stalledMs: model.stalledMs))
        }
        publishStalls(i)
        progress.activeViewers.subtract(1, ordering: .relaxed)
    }

    /// Stalls the viewer's model has seen start since the last call, into the live progress.
    mutating func publishStalls(_ i: Int) {
        guard let stalls = viewers[i].model?.stalls, stalls > viewers[i].stallsPublished else { return }
        progress.stalls.add(UInt64(stalls - viewers[i].stallsPublished), ordering: .relaxed)
        viewers[i].stallsPublished = stalls
    }

    // MARK: - Timers

    mutating func schedule(_ i: Int, at due: UInt64) {
        timers.append((due, i))
        var child = timers.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard timers[child].due < timers[parent].due else { break }
            timers.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popTimer() -> (due: UInt64, viewer: Int)? {
        guard let first = timers.first else { return nil }
        let last = timers.removeLast()
        if !timers.isEmpty {
            timers[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < timers.count && timers[left].due < timers[smallest].due { smallest = left }
                if right < timers.count && timers[right].due < timers[smallest].due { smallest = right }
                if smallest == parent { break }
                timers.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first
    }

    mutating func armTick() {
        let sqe = ring.submissionEntry()
        io_uring_prep_timeout(sqe, tickSpec, 0, 0)
        io_uring_sqe_set_data64(sqe, Self.userData(.tick, 0, 0))
    }

    mutating func onTick() {
        armTick()
        if now >= nextPublish {
            progress.intervalP99.store(interval.totalCount > 0 ? interval.valueAtPercentile(99) : 0, ordering: .relaxed)
            interval.reset()
            nextPublish = now + 1_000_000_000
        }
        while let due = timers.first?.due, due <= now, let timer = popTimer() {
            let i = timer.viewer
            guard !viewers[i].finished else { continue }
            if !viewers[i].started {
                begin(i)
            } else if viewers[i].retrying {
                viewers[i].retrying = false
                // A segment is asked of the model again (it may pick another rendition); the rest as it was.
                if case .segment = viewers[i].want { drive(i) } else { request(i, viewers[i].want) }
            } else {
                drive(i)
            }
        }
    }

    // MARK: - Results by kind

    func kindIndex(_ want: Want) -> Int {
        switch want {
        case .master: PlayerResults.Kind.master.rawValue
        case .playlist: PlayerResults.Kind.playlist.rawValue
        case .initialization: PlayerResults.Kind.initialization.rawValue
        case .segment: PlayerResults.Kind.segment.rawValue
        case .audioPlaylist: PlayerResults.Kind.playlist.rawValue
        case .audioInitialization: PlayerResults.Kind.initialization.rawValue
        case .audioSegment: PlayerResults.Kind.audio.rawValue
        }
    }

    static func sessionID(_ n: Int) -> String {
        var random: UInt64 = 0
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = read(fd, &random, 8)
            close(fd)
        }
        return "lt-\(String(random, radix: 16))-\(n)"
    }
}

/// Writes request bytes into a fixed buffer, remembering when they did not fit.
struct RequestWriter {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    var count = 0
    var overflowed = false

    init(base: UnsafeMutableRawPointer, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    mutating func append(_ text: some StringProtocol) {
        for byte in text.utf8 {
            guard count < capacity else {
                overflowed = true
                return
            }
            base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
            count += 1
        }
    }
}
