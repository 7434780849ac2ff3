/// A span of bytes inside the buffer a request head was parsed from, as offsets, so a parsed head
/// refers to its header values without copying them. `start < 0` means absent.
public struct ByteSlice: Sendable, Equatable {
    public var start: Int32
    public var count: Int32

    @inlinable public init(start: Int, count: Int) {
        self.start = Int32(truncatingIfNeeded: start)
        self.count = Int32(truncatingIfNeeded: count)
    }

    /// The absent slice.
    public static let none = ByteSlice(start: -1, count: 0)

    @inlinable public var isPresent: Bool { start >= 0 }
    @inlinable public var end: Int { Int(start) + Int(count) }

    /// The bytes of this slice inside `buffer` (the buffer the head was parsed from).
    @inlinable public func bytes(in buffer: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard isPresent else { return UnsafeRawBufferPointer(start: buffer.baseAddress, count: 0) }
        return UnsafeRawBufferPointer(rebasing: buffer[Int(start)..<end])
    }
}

extension UnsafeRawBufferPointer {
    /// ASCII case-insensitive comparison with a lowercase literal.
    @inlinable public func equalsLowercase(_ literal: StaticString) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        let lit = literal.utf8Start
        for i in 0..<count {
            var b = self[i]
            if b >= 0x41 && b <= 0x5A { b |= 0x20 }
            if b != lit[i] { return false }
        }
        return true
    }

    /// Whether these bytes equal `literal` exactly.
    @inlinable func equals(_ literal: StaticString) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        let lit = literal.utf8Start
        for i in 0..<count where self[i] != lit[i] { return false }
        return true
    }
}

/// Testing helpers: read a slice as a String (allocates; never on the request path).
extension ByteSlice {
    public func string(in buffer: UnsafeRawBufferPointer) -> String? {
        guard isPresent else { return nil }
        return String(decoding: bytes(in: buffer), as: UTF8.self)
    }
}
