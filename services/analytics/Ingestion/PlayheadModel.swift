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
/// It cannot tell a pause from a stall (a paused player stops fetching once its buffer is full),
/// so with pauses it over-counts; players that send CMCD `bs` are counted from that instead.
struct PlayheadModel: Equatable, Sendable {
    /// Wall time (µs) at which the playhead was at `mediaAnchor`; nil before playback.
    var wallAnchor: Int64?
    var mediaAnchor: Int64 = 0
    /// Media time (µs) up to which the buffer holds segments contiguously.
    var bufferedEnd: Int64 = 0

    /// A wait shorter than this is delivery jitter, not a stall the viewer saw.
    static let threshold: Int64 = 500_000
    /// A segment starting this close past the buffer's end continues it (rounded durations).
    static let contiguity: Int64 = 500_000

    /// A stall the model found: how long the player waited.
    struct Stall: Equatable, Sendable {
        var microseconds: Int64
    }

    /// Applies a segment of `interval` that finished arriving at `arrival` (µs, wall time).
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
        defer { bufferedEnd = max(bufferedEnd, interval.end) }
        let waited = playhead - bufferedEnd
        guard waited > Self.threshold else { return nil }
        // The buffer ran dry at `bufferedEnd`; playback resumes from there now.
        wallAnchor = arrival
        mediaAnchor = bufferedEnd
        return Stall(microseconds: waited)
    }

    private mutating func start(_ interval: MediaInterval, at arrival: Int64) {
        wallAnchor = arrival
        mediaAnchor = interval.start
        bufferedEnd = interval.end
    }

    // MARK: - Stored form

    /// `wallAnchor,mediaAnchor,bufferedEnd`, or "" before playback.
    var text: String {
        guard let wallAnchor else { return "" }
        return "\(wallAnchor),\(mediaAnchor),\(bufferedEnd)"
    }

    init() {}

    init(text: String) {
        let parts = text.split(separator: ",").compactMap { Int64($0) }
        guard parts.count == 3 else { return }
        (wallAnchor, mediaAnchor, bufferedEnd) = (parts[0], parts[1], parts[2])
    }
}
