import RawStructuredFieldValues

/// The CMCD keys (CTA-5004) analytics reads from a delivery record, parsed as the Structured
/// Field dictionary (RFC 8941) they are. The gateway records them as sent, unparsed; a value
/// that is not a valid dictionary, or a key of the wrong type, is ignored, never trusted.
struct CMCD: Equatable, Sendable {
    /// `bs`: the buffer ran dry since the last request (a rebuffering the player reports).
    var bufferStarvation = false
    /// `bl`: the buffer length, in milliseconds, when the request was made.
    var bufferLengthMilliseconds: Int64?
    /// `su`: the object is needed to start (or restart after a seek) playback.
    var startup = false
    /// `br`: the encoded bitrate of the object, kbit/s.
    var bitrateKbps: Int64?
    /// `ot`: the object type token (`v`, `a`, `av`, `m`, `i`, ...).
    var objectType: String?

    /// The longest CMCD text parsed (the record's field holds 256 bytes).
    static let maxLength = 1024

    init() {}

    /// Parses the record's CMCD text; nil when it is empty or not a Structured Field dictionary.
    init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= Self.maxLength else { return nil }
        var parser = StructuredFieldValueParser(Array(text.utf8))
        guard let dictionary = try? parser.parseDictionaryFieldValue() else { return nil }
        self.init()
        for (key, value) in dictionary {
            guard case .item(let item) = value else { continue }
            switch (key, item.rfc9651BareItem) {
            case ("bs", .bool(let flag)): bufferStarvation = flag
            case ("su", .bool(let flag)): startup = flag
            case ("bl", .integer(let milliseconds)) where milliseconds >= 0: bufferLengthMilliseconds = milliseconds
            case ("br", .integer(let kbps)) where kbps >= 0: bitrateKbps = kbps
            case ("ot", .token(let token)): objectType = token
            default: continue
            }
        }
    }
}
