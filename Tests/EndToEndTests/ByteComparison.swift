import Foundation

/// Whether `received` is exactly `expected`. A plain Bool, so that a failing `#expect` reports
/// `mismatch(_:_:)` instead of trying to diff megabytes element by element.
func sameBytes(_ received: Data, _ expected: Data) -> Bool { received == expected }
func sameBytes(_ received: [UInt8], _ expected: Data) -> Bool { Data(received) == expected }

/// Where two byte strings part: their lengths and the first differing offset.
func mismatch(_ received: Data, _ expected: Data) -> String {
    let common = min(received.count, expected.count)
    let offset = (0..<common).first { received[received.startIndex + $0] != expected[expected.startIndex + $0] } ?? common
    return "received \(received.count) bytes, expected \(expected.count); first difference at offset \(offset)"
}
func mismatch(_ received: [UInt8], _ expected: Data) -> String { mismatch(Data(received), expected) }
