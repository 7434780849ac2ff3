import MarqueeMetering

/// Rebuffering inferred from delivery timing, for players that send no CMCD: a player plays in
/// real time from the first segment it receives, so a segment that arrives after the playhead
/// would have reached its start means the player waited for it.
///
/// The model follows one track kind (video when the package has video) in arrival order:
/// - the first segment starts playback at its arrival;
/// - a segment that continues the buffer (starts within `contiguity` of its end, or inside it:
///   a re-fetch at another rendition) extends it; if the playhead would have passed the buffer's
///   end before it arrived by more than `threshold`, the player stalled that long, and playback
///   restarts from the buffer's end at the arrival;
/// - a segment behind the playhead or past the buffer's end is a seek: playback restarts there,
///   and no stall is counted (the wait after a seek is not rebuffering);
/// - a segment inside the buffer ahead of the playhead is a re-fetch at another rendition.
///
/// A separate audio track, once the player fetches one, must be there too: the playable end is
/// the lower of the two tracks' buffered ends, so a player that fetches each segment's audio
/// after its video waits for the audio. After a start (the first segment, or a seek), playback
/// begins when the audio of the start arrives, if it comes later: a start is not a stall.
///
/// It cannot tell a pause from a stall (a paused player stops fetching once its buffer is full),
/// so with pauses it over-counts; players that send CMCD `bs` are counted from that instead.
struct PlayheadModel: Equatable, Sendable {
    /// Wall time (µs) at which the playhead was at `mediaAnchor`; nil before playback.
    var wallAnchor: Int64?
    var mediaAnchor: Int64 = 0
    /// Media time (µs) up to which the buffer holds the primary track's segments contiguously.
    var bufferedEnd: Int64 = 0
    /// The separate audio track's contiguous run of segments (µs), once the player fetched one.
    var audio: MediaInterval?
    /// Since the last start, the audio at the start has not come yet.
    var awaitingAudio = false

    /// A wait shorter than this is delivery jitter, not a stall the viewer saw.
    static let threshold: Int64 = 500_000
    /// A segment starting this close past the buffer's end continues it (rounded durations).
    static let contiguity: Int64 = 500_000

    /// A stall the model found: how long the player waited.
    struct Stall: Equatable, Sendable {
        var microseconds: Int64
    }

    /// Where the buffer ends for playback: the primary track's end, or the audio's if it ends
    /// earlier (when the audio run covers where playback is).
    var playableEnd: Int64 {
        guard let audio, audio.start <= mediaAnchor + Self.contiguity, audio.end > mediaAnchor else { return bufferedEnd }
        return min(bufferedEnd, audio.end)
    }

    /// Applies a segment of the primary track, of `interval`, that finished arriving at `arrival`
    /// (µs, wall time).
    mutating func receive(_ interval: MediaInterval, at arrival: Int64) -> Stall? {
        guard let anchor = wallAnchor else {
            start(interval, at: arrival)
            return nil
        }
        let playhead = mediaAnchor + max(0, arrival - anchor)
        // Where the player is: the playhead, or the buffer's end if it ran dry there.
        if interval.start < min(playhead, bufferedEnd) - Self.contiguity {
            start(interval, at: arrival)  // behind the playhead: a seek back
            return nil
        }
        if interval.end <= bufferedEnd { return nil }  // buffered already: a re-fetch at another rendition
        guard interval.start <= bufferedEnd + Self.contiguity else {
            start(interval, at: arrival)  // past the buffer: a seek forward
            return nil
        }
        let before = playableEnd
        bufferedEnd = max(bufferedEnd, interval.end)
        return grew(from: before, at: arrival, playhead: playhead)
    }

    /// Applies a segment of the separate audio track.
    mutating func receiveAudio(_ interval: MediaInterval, at arrival: Int64) -> Stall? {
        let before = playableEnd
        if let run = audio, interval.start <= run.end + Self.contiguity, interval.end >= run.start - Self.contiguity {
            audio = MediaInterval(start: min(run.start, interval.start), end: max(run.end, interval.end))
        } else {
            audio = interval  // the first audio, or audio after a seek
        }
        guard let anchor = wallAnchor else { return nil }
        if awaitingAudio, interval.start <= mediaAnchor + Self.contiguity, interval.end > mediaAnchor {
            // The start's audio: playback began when it came, not when the video did.
            awaitingAudio = false
            wallAnchor = max(anchor, arrival)
            return nil
        }
        return grew(from: before, at: arrival, playhead: mediaAnchor + max(0, arrival - anchor))
    }

    /// The playable end may have grown past `before` at `arrival`: if the playhead had passed
    /// `before` by more than the threshold, the player stalled there until now.
    private mutating func grew(from before: Int64, at arrival: Int64, playhead: Int64) -> Stall? {
        guard playableEnd > before else { return nil }
        let waited = playhead - before
        guard waited > Self.threshold else { return nil }
        wallAnchor = arrival
        mediaAnchor = before
        return Stall(microseconds: waited)
    }

    private mutating func start(_ interval: MediaInterval, at arrival: Int64) {
        wallAnchor = arrival
        mediaAnchor = interval.start
        bufferedEnd = interval.end
        awaitingAudio = !(audio.map { $0.start <= interval.start + Self.contiguity && $0.end > interval.start } ?? false)
    }

    // MARK: - Stored form

    /// `wallAnchor,mediaAnchor,bufferedEnd[,audioStart,audioEnd,awaitingAudio]`, or "" before
    /// playback and audio.
    var text: String {
        let head = wallAnchor.map { "\($0),\(mediaAnchor),\(bufferedEnd)" } ?? ",,"
        guard let audio else { return wallAnchor == nil ? "" : head }
        return head + ",\(audio.start),\(audio.end),\(awaitingAudio ? 1 : 0)"
    }

    init() {}

    init(text: String) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int64($0) }
        if parts.count >= 3, let wall = parts[0], let media = parts[1], let end = parts[2] {
            (wallAnchor, mediaAnchor, bufferedEnd) = (wall, media, end)
            awaitingAudio = true  // no audio seen since the start
        }
        if parts.count == 6, let start = parts[3], let end = parts[4], start <= end {
            audio = MediaInterval(start: start, end: end)
            awaitingAudio = parts[5] == 1
        }
    }
}
