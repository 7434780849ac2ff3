/// Header lines fixed by configuration, rendered once so responses copy them as bytes.
struct HeaderLines {
    enum CORS {
        case disabled
        case anyOrigin
        /// Only these origins (exact match); the matching one is echoed with `Vary: Origin`.
        case origins([[UInt8]])
    }

    let cacheControlManifest: [UInt8]
    let cacheControlSegment: [UInt8]
    let cacheControlOther: [UInt8]
    let cors: CORS
    let corsMaxAge: [UInt8]
    /// `Strict-Transport-Security: ...` over HTTPS (`tls.hsts`); empty when not sent.
    let strictTransportSecurity: [UInt8]

    init(_ configuration: ServerConfiguration) {
        func line(_ name: String, _ value: String) -> [UInt8] { Array("\(name): \(value)\r\n".utf8) }
        cacheControlManifest = line("Cache-Control", configuration.cacheControlManifest)
        cacheControlSegment = line("Cache-Control", configuration.cacheControlSegment)
        cacheControlOther = line("Cache-Control", configuration.cacheControlOther)
        let origins = configuration.corsAllowedOrigins
        if origins.isEmpty {
            cors = .disabled
        } else if origins.contains("*") {
            cors = .anyOrigin
        } else {
            cors = .origins(origins.map { Array($0.utf8) })
        }
        corsMaxAge = line("Access-Control-Max-Age", String(configuration.corsMaxAgeSeconds))
        strictTransportSecurity = configuration.tls?.strictTransportSecurity.map { line("Strict-Transport-Security", $0) } ?? []
    }
}
