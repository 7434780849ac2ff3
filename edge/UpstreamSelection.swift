/// Which upstream to ask for an object, and which next when it fails, without I/O.
///
/// Rendezvous hashing (highest random weight): each upstream scores `hash(key, upstream)` and the
/// highest score asks first. Every edge computes the same order for a key, so a tier of shields
/// behind the edges keeps its cache partitioned (each object lives on one shield), and removing
/// an upstream moves only the objects that lived on it. Upstreams that failed recently (connect
/// refused, 5xx, no answer in time) go to the end of the order for `downMilliseconds`; when every
/// upstream is down, all are tried in order anyway, since one may have come back.
struct UpstreamSelection {
    let names: [String]
    let downMilliseconds: Int64
    private let nameHashes: [UInt64]
    private(set) var downUntil: [Int64]

    init(names: [String], downMilliseconds: Int64) {
        self.names = names
        self.downMilliseconds = downMilliseconds
        nameHashes = names.map(Self.hash)
        downUntil = names.map { _ in Int64.min }
    }

    /// The upstreams to try for `key`, in order.
    func order(for key: String, now: Int64) -> [Int] {
        let keyHash = Self.hash(key)
        let scored = names.indices.map { i in (i, Self.mix(keyHash ^ nameHashes[i])) }
        let ranked = scored.sorted { $0.1 > $1.1 }.map(\.0)
        return ranked.filter { downUntil[$0] <= now } + ranked.filter { downUntil[$0] > now }
    }

    func isDown(_ upstream: Int, now: Int64) -> Bool { downUntil[upstream] > now }

    mutating func failed(_ upstream: Int, now: Int64) { downUntil[upstream] = now + downMilliseconds }

    mutating func succeeded(_ upstream: Int) { downUntil[upstream] = Int64.min }

    /// FNV-1a over the UTF-8 bytes.
    static func hash(_ text: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return h
    }

    /// A 64-bit finaliser (SplitMix64's), so scores of one key across upstreams are independent.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
