/// Which requests go to a service: `/api/<name>` and `/api/<name>/...` to the upstream named so,
/// and `/.well-known/jwks.json` to `auth` when one is configured. Matched on the raw path bytes,
/// without allocating.
struct ServiceRoutes {
    enum Match: Equatable {
        /// Not an API path: served from files as before.
        case none
        case upstream(Int)
        /// `/api/...` naming no configured service.
        case unknownService
    }

    let names: [[UInt8]]
    let auth: Int

    init(_ upstreams: [ServiceUpstream]) {
        names = upstreams.map { Array($0.name.utf8) }
        auth = upstreams.firstIndex { $0.name == "auth" } ?? -1
    }

    private static let jwks: StaticString = "/.well-known/jwks.json"

    func match(_ path: UnsafeRawBufferPointer) -> Match {
        let n = path.count
        if n >= 4 && path[0] == 0x2F && path[1] == 0x61 && path[2] == 0x70 && path[3] == 0x69 && (n == 4 || path[4] == 0x2F) {
            // "/api" or "/api/..."
            guard n > 5 else { return .unknownService }
            var end = 5
            while end < n && path[end] != 0x2F { end += 1 }
            let name = UnsafeRawBufferPointer(rebasing: path[5..<end])
            for (index, candidate) in names.enumerated() where candidate.count == name.count {
                if candidate.withUnsafeBytes({ $0.elementsEqual(name) }) { return .upstream(index) }
            }
            return .unknownService
        }
        if auth >= 0 && n == Self.jwks.utf8CodeUnitCount
            && UnsafeRawBufferPointer(start: Self.jwks.utf8Start, count: n).elementsEqual(path)
        {
            return .upstream(auth)
        }
        return .none
    }
}
