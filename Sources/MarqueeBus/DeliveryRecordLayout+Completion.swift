/// Completing a record the gateway started when its response began: the text fields, status,
/// range and client are known then, but what went out and when it ended only at the last byte
/// (or the cut). The loop keeps the started record in per-connection memory and completes it in
/// the ring's slot, so nothing is allocated and the strings are copied once.
extension DeliveryRecordLayout {
    /// Sets the fields known only when a response ends. `slot` holds a record `write` filled.
    /// Cost: five stores.
    @inline(__always)
    public static func complete(
        _ slot: UnsafeMutableRawPointer, endMicroseconds: Int64, durationMicroseconds: UInt32, bytesSent: UInt64, aborted: Bool
    ) {
        slot.storeBytes(of: endMicroseconds.littleEndian, toByteOffset: endOffset, as: Int64.self)
        slot.storeBytes(of: durationMicroseconds.littleEndian, toByteOffset: durationOffset, as: UInt32.self)
        slot.storeBytes(of: bytesSent.littleEndian, toByteOffset: bytesSentOffset, as: UInt64.self)
        var flags = slot.load(fromByteOffset: flagsOffset, as: UInt8.self)
        if aborted { flags |= Flags.aborted.rawValue } else { flags &= ~Flags.aborted.rawValue }
        slot.storeBytes(of: flags, toByteOffset: flagsOffset, as: UInt8.self)
    }

    /// Whether the record in `bytes` (one whole record) had a field cut.
    @inline(__always)
    public static func isTruncated(_ record: UnsafeRawPointer) -> Bool {
        record.load(fromByteOffset: flagsOffset, as: UInt8.self) & Flags.truncated.rawValue != 0
    }
}
