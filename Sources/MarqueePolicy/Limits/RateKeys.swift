/// One key to charge: which configured limit (index into the limiter's `limits`) and whose bucket
/// (a ``StableHash`` of the client address, token subject, …).
public struct RateKey: Sendable, Hashable {
    public var limitIndex: UInt8
    public var keyHash: UInt64

    public init(limitIndex: UInt8, keyHash: UInt64) {
        self.limitIndex = limitIndex
        self.keyHash = keyHash
    }
}

/// Up to four keys charged together for one request (for example per address, per token, per
/// route), stored inline so building and passing them never touches the heap.
public struct RateKeys: RandomAccessCollection, Sendable, Hashable {
    /// The most keys one request may carry.
    public static let capacity = 4

    @usableFromInline var k0 = RateKey(limitIndex: 0, keyHash: 0)
    @usableFromInline var k1 = RateKey(limitIndex: 0, keyHash: 0)
    @usableFromInline var k2 = RateKey(limitIndex: 0, keyHash: 0)
    @usableFromInline var k3 = RateKey(limitIndex: 0, keyHash: 0)
    @usableFromInline var stored: UInt8 = 0

    public init() {}

    /// One key.
    public init(_ key: RateKey) { append(key) }

    /// Adds a key. - Returns: false (and adds nothing) when four keys are already present.
    @discardableResult
    public mutating func append(_ key: RateKey) -> Bool {
        switch stored {
        case 0: k0 = key
        case 1: k1 = key
        case 2: k2 = key
        case 3: k3 = key
        default: return false
        }
        stored += 1
        return true
    }

    /// Adds a key by its parts. - Returns: false when full.
    @discardableResult
    public mutating func append(limitIndex: UInt8, keyHash: UInt64) -> Bool {
        append(RateKey(limitIndex: limitIndex, keyHash: keyHash))
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { Int(stored) }

    public subscript(position: Int) -> RateKey {
        precondition(position >= 0 && position < Int(stored), "RateKeys index out of range")
        switch position {
        case 0: return k0
        case 1: return k1
        case 2: return k2
        default: return k3
        }
    }

    public static func == (a: RateKeys, b: RateKeys) -> Bool { a.elementsEqual(b) }

    public func hash(into hasher: inout Hasher) {
        for key in self { hasher.combine(key) }
    }
}
