import MarqueeServiceKit

/// Which uploads have a PATCH streaming into them in this process. tus clients send one PATCH
/// at a time; a second one at once (a client retrying while its first connection still drains)
/// is refused rather than interleaved into the same file.
actor UploadLocks {
    private var busy: Set<String> = []

    func acquire(_ id: String) -> Bool {
        busy.insert(id).inserted
    }

    func release(_ id: String) {
        busy.remove(id)
    }
}
