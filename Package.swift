// swift-tools-version: 6.1
import PackageDescription

// MARK: - Dependencies

let argumentParser: Package.Dependency = .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
let configuration: Package.Dependency = .package(
    url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: [.defaults, "YAML"])
let log: Package.Dependency = .package(url: "https://github.com/apple/swift-log", from: "1.16.2")
let system: Package.Dependency = .package(url: "https://github.com/apple/swift-system", from: "1.5.0")
// Services (auth, catalog, ...): Hummingbird 2, SQL over SQLite and PostgreSQL, JWT, metrics.
let hummingbird: Package.Dependency = .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1")
let hummingbirdAuth: Package.Dependency = .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0")
let postgres: Package.Dependency = .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2")
let sqlite: Package.Dependency = .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2")
let jwt: Package.Dependency = .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0")
let metrics: Package.Dependency = .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0")
let httpClient: Package.Dependency = .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0")
let lifecycle: Package.Dependency = .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0")
let crypto: Package.Dependency = .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2")
let nio: Package.Dependency = .package(url: "https://github.com/apple/swift-nio", from: "2.101.2")
// TLS to PostgreSQL (already in the graph through postgres-nio and async-http-client).
let nioSSL: Package.Dependency = .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6")
let httpTypes: Package.Dependency = .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0")
let prometheus: Package.Dependency = .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1")
// Latency histograms of `marquee loadtest`.
let hdrHistogram: Package.Dependency = .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0")
// CMCD (CTA-5004) values are Structured Field dictionaries (RFC 8941): analytics parses them.
let structuredHeaders: Package.Dependency = .package(url: "https://github.com/apple/swift-http-structured-headers", from: "1.7.0")

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "marquee",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "marquee", targets: ["marquee"]),
        .library(name: "MarqueeHTTP", targets: ["MarqueeHTTP"]),
        .library(name: "MarqueeTokens", targets: ["MarqueeTokens"]),
        .library(name: "MarqueePolicy", targets: ["MarqueePolicy"]),
        .library(name: "MarqueeGateway", targets: ["MarqueeGateway"]),
    ],
    dependencies: [
        argumentParser, configuration, log, system, hummingbird, hummingbirdAuth, postgres, sqlite, jwt, metrics, prometheus, httpClient, lifecycle, httpTypes,
        nio, nioSSL, crypto, hdrHistogram, structuredHeaders,
    ],
    targets: [
        // MARK: - C libraries (system libraries and import-only shims)
        .systemLibrary(name: "CURing", pkgConfig: "liburing", providers: [.apt(["liburing-dev"])]),
        .systemLibrary(name: "CLinux"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // OpenSSL's TLS (libssl), for HTTPS on the gateway's loops and to upstreams.
        .systemLibrary(name: "CTLS", pkgConfig: "libssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "MarqueeTLS", dependencies: ["CTLS"]),
        .systemLibrary(name: "CMaxMindDB", providers: [.apt(["libmaxminddb-dev"])]),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(
            name: "CFFmpeg",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev"])]),

        // MARK: - Shared engine
        .target(name: "MarqueeRing", dependencies: ["CURing", "CLinux"]),
        // Whole lines to standard output and error, unbuffered: for the commands, roles and engine.
        .target(name: "MarqueeConsole"),
        .target(name: "MarqueeHTTP"),
        // Tokens, their key ring and the key files it is reloaded from (the reloading primitives are MarqueePolicy's).
        .target(name: "MarqueeTokens", dependencies: ["MarqueeHTTP", "MarqueePolicy", "COpenSSL", "CLinux"]),
        // The hiredis client (blocking connections on dedicated threads): rate limits, revocations, the record stream.
        .target(name: "MarqueeRedis", dependencies: ["MarqueeHTTP", "CHiredis"]),
        .target(name: "MarqueePolicy", dependencies: ["MarqueeHTTP", "MarqueeRedis", "CLinux", "CMaxMindDB", "CHiredis"]),
        .target(
            name: "MarqueeGateway",
            dependencies: [
                "MarqueeRing", "MarqueeHTTP", "MarqueeTokens", "MarqueePolicy", "MarqueeRedis", "MarqueeBus", "MarqueeConsole", "MarqueeTLS", "CLinux",
            ]),
        // The settings every gateway role shares, read once for all roles. Apart from the engine:
        // swift-system's CSystem and liburing both declare io_uring's structs, and one module
        // cannot import both.
        .target(
            name: "MarqueeGatewaySettings",
            dependencies: [
                "MarqueeGateway", "MarqueeHTTP", "MarqueePolicy", "MarqueeTokens", "MarqueeConsole",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(name: "MarqueeMedia", dependencies: ["CFFmpeg"]),
        // HLS playlists and DASH manifests, read for players and meters (pure Swift).
        .target(name: "MarqueeManifests"),
        // `marquee loadtest`: load clients on the engine's rings (docs/loadtest.md).
        .target(
            name: "MarqueeLoad",
            dependencies: ["MarqueeRing", "MarqueeHTTP", "MarqueeManifests", "CURing", "CLinux", .product(name: "Histogram", package: "hdrhistogram-swift")]),
        // Delivery records: the layout, the per-loop ring, the writer thread and its carriers (docs/delivery-records.md).
        .target(name: "MarqueeBus", dependencies: ["MarqueeRedis"]),
        // What consumers of delivery records share: their sources (the local log, the Redis stream),
        // packages' timelines and a session's covered media time (billing meters it, analytics counts it).
        .target(
            name: "MarqueeMetering",
            dependencies: [
                "MarqueeBus", "MarqueeManifests", "MarqueeRedis", "MarqueeStore",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]),
        .target(
            name: "MarqueeStore",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .target(
            name: "MarqueeServiceKit",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),

        // MARK: - Roles
        .target(
            name: "MarqueeOrigin",
            dependencies: [
                "MarqueeGateway",
                "MarqueeGatewaySettings",
                "MarqueeConsole",
                "MarqueeHTTP",
                "MarqueePolicy",
                "MarqueeStore",
                "MarqueeTokens",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "origin"),
        .target(
            name: "MarqueeEdge",
            dependencies: [
                "CLinux",
                "MarqueeTLS",
                "MarqueeGateway",
                "MarqueeGatewaySettings",
                "MarqueeConsole",
                "MarqueeHTTP",
                "MarqueePolicy",
                "MarqueeTokens",
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            path: "edge"),

        // MARK: - Services
        .target(
            name: "MarqueeAuth",
            dependencies: [
                "MarqueeServiceKit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "services/auth",
            resources: [.copy("Resources/openapi.yaml"), .copy("Resources/common-passwords.txt")]),
        .target(
            name: "MarqueeCatalog",
            dependencies: [
                "MarqueeServiceKit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "services/catalog",
            resources: [.copy("Resources/openapi.yaml")]),
        .target(
            name: "MarqueePlayback",
            dependencies: [
                "MarqueeServiceKit",
                "MarqueePolicy",
                "MarqueeTokens",
                "MarqueeHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "services/playback",
            resources: [.copy("Resources/openapi.yaml"), .copy("Resources/player")]),
        // Billing: wallets, the ledger, metering minutes watched from delivery records.
        .target(
            name: "MarqueeBilling",
            dependencies: [
                "MarqueeServiceKit",
                "MarqueeBus",
                "MarqueeManifests",
                "MarqueeMetering",
                "MarqueePolicy",
                "MarqueeRedis",
                "MarqueeStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "services/billing",
            resources: [.copy("Resources/openapi.yaml")]),
        // Analytics: views, watch time, experience and revenue rolled up from delivery records; the dashboard.
        .target(
            name: "MarqueeAnalytics",
            dependencies: [
                "MarqueeServiceKit",
                "MarqueeBus",
                "MarqueeMetering",
                "MarqueeStore",
                .product(name: "RawStructuredFieldValues", package: "swift-http-structured-headers"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "services/analytics",
            resources: [.copy("Resources/openapi.yaml"), .copy("Resources/dashboard")]),
        .target(
            name: "MarqueeIngest",
            dependencies: [
                "MarqueeServiceKit",
                "MarqueeMedia",
                "MarqueeStore",
                "MarqueeHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "services/ingest",
            resources: [.copy("Resources/openapi.yaml")]),

        // MARK: - Executable
        .executableTarget(
            name: "marquee",
            dependencies: [
                "MarqueeOrigin",
                "MarqueeEdge",
                "MarqueeGatewaySettings",
                "MarqueeConsole",
                "MarqueeAuth",
                "MarqueeCatalog",
                "MarqueeIngest",
                "MarqueePlayback",
                "MarqueeBilling",
                "MarqueeAnalytics",
                "MarqueeMetering",
                "MarqueeServiceKit",
                "MarqueeMedia",
                "MarqueeStore",
                "MarqueeGateway",
                "MarqueeLoad",
                "MarqueeHTTP",
                "MarqueePolicy",
                "MarqueeRedis",
                "MarqueeTokens",
                "MarqueeTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]),

        // MARK: - Tests
        .target(name: "MarqueeTestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "MarqueeHTTPTests", dependencies: ["MarqueeHTTP", "MarqueeTestSupport"]),
        .testTarget(name: "MarqueeTLSTests", dependencies: ["MarqueeTLS", "CTLS", "MarqueeTestSupport"]),
        .testTarget(name: "MarqueeTokensTests", dependencies: ["MarqueeTokens", "MarqueeHTTP", "MarqueeTestSupport"]),
        .testTarget(name: "MarqueePolicyTests", dependencies: ["MarqueePolicy", "MarqueeRedis", "MarqueeTestSupport"]),
        .testTarget(name: "MarqueeGatewayTests", dependencies: ["MarqueeGateway", "MarqueeHTTP", "MarqueeBus", "MarqueeTestSupport"]),
        .testTarget(name: "MarqueeLoadTests", dependencies: ["MarqueeLoad", "MarqueeTestSupport"]),
        .testTarget(name: "MarqueeManifestsTests", dependencies: ["MarqueeManifests", "MarqueeTestSupport"]),
        .testTarget(name: "MarqueeEdgeTests", dependencies: ["MarqueeEdge", "MarqueeGateway", "MarqueeHTTP", "MarqueeTokens", "MarqueeTestSupport"]),
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "MarqueeServiceKit", "MarqueeAuth", "MarqueeCatalog", "MarqueePlayback", "MarqueeBilling", "MarqueeAnalytics", "MarqueeMetering", "MarqueeBus", "MarqueeStore", "MarqueePolicy", "MarqueeRedis",
                "MarqueeTokens", "MarqueeHTTP", "MarqueeTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]),
        .testTarget(
            name: "IngestTests",
            dependencies: [
                "MarqueeIngest", "MarqueeAuth", "MarqueeCatalog", "MarqueeServiceKit", "MarqueeTestSupport", "MarqueeMedia", "MarqueeStore",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]),
        .testTarget(name: "StoreTests", dependencies: ["MarqueeStore", "MarqueeTestSupport"]),
        .testTarget(name: "MarqueeBusTests", dependencies: ["MarqueeBus", "MarqueeRedis", "MarqueeTestSupport"]),
        .testTarget(name: "BillingTests", dependencies: ["MarqueeBilling", "MarqueeMetering", "MarqueeBus", "MarqueeTestSupport"]),
        .testTarget(name: "AnalyticsTests", dependencies: ["MarqueeAnalytics", "MarqueeMetering", "MarqueeBus", "MarqueeServiceKit", "MarqueeTestSupport"]),
        .testTarget(name: "MediaTests", dependencies: ["MarqueeMedia", "CFFmpeg", "MarqueeTestSupport"]),
        // Scripts/: Python helpers the tests run (browser playback, k8s validation), not sources.
        .testTarget(
            name: "EndToEndTests", dependencies: ["MarqueeHTTP", "MarqueeStore", "MarqueeBus", "MarqueeRedis", "MarqueeTestSupport"], exclude: ["Scripts"]),
    ]
)

for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + swiftSettings
}
