/// A set of countries as a 676-bit map (one bit per letter pair AA…ZZ) stored inline, so a rule
/// holds its countries without a heap buffer and membership is one shift and mask.
struct CountrySet: Sendable {
    private var words: InlineArray<11, UInt64> = .init(repeating: 0)

    init(_ codes: [CountryCode]) {
        for code in codes { insert(code) }
    }

    mutating func insert(_ code: CountryCode) {
        guard let index = code.index else { return }
        words[index >> 6] |= 1 << UInt64(index & 63)
    }

    @inline(__always) func contains(_ code: CountryCode) -> Bool {
        guard let index = code.index else { return false }
        return words[index >> 6] & (1 << UInt64(index & 63)) != 0
    }
}
