// swift-tools-version: 6.1
import PackageDescription

// MARK: - Dependencies

let argumentParser: Package.Dependency = .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
let configuration: Package.Dependency = .package(
    url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: [.defaults, "YAML"])
let log: Package.Dependency = .package(url: "https://github.com/apple/swift-log", from: "1.16.2")
let system: Package.Dependency = .package(url: "https://github.com/apple/swift-system", from: "1.5.0")

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .unsafeFlags(["-wmo"], .when(configuration: .release)),
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
    dependencies: [argumentParser, configuration, log, system],
    targets: [
        // MARK: - C libraries (system libraries and import-only shims)
        .systemLibrary(name: "CURing", pkgConfig: "liburing", providers: [.apt(["liburing-dev"])]),
        .systemLibrary(name: "CLinux"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CMaxMindDB", providers: [.apt(["libmaxminddb-dev"])]),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),

        // MARK: - Shared engine
        .target(name: "MarqueeRing", dependencies: ["CURing", "CLinux"]),
        .target(name: "MarqueeHTTP"),
        .target(name: "MarqueeTokens", dependencies: ["MarqueeHTTP", "COpenSSL"]),
        .target(name: "MarqueePolicy", dependencies: ["MarqueeHTTP", "CLinux", "CMaxMindDB", "CHiredis"]),
        .target(
            name: "MarqueeGateway",
            dependencies: ["MarqueeRing", "MarqueeHTTP", "MarqueeTokens", "MarqueePolicy", "CLinux"]),

        // MARK: - Roles
        .target(
            name: "MarqueeOrigin",
            dependencies: [
                "MarqueeGateway",
                "MarqueeHTTP",
                "MarqueePolicy",
                "MarqueeTokens",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "origin"),

        // MARK: - Executable
        .executableTarget(
            name: "marquee",
            dependencies: [
                "MarqueeOrigin",
                "MarqueeGateway",
                "MarqueeHTTP",
                "MarqueePolicy",
                "MarqueeTokens",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: - Tests
        .target(name: "MarqueeTestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "MarqueeHTTPTests", dependencies: ["MarqueeHTTP", "MarqueeTestSupport"]),
        .testTarget(name: "MarqueeTokensTests", dependencies: ["MarqueeTokens", "MarqueeTestSupport"]),
        .testTarget(name: "MarqueePolicyTests", dependencies: ["MarqueePolicy", "MarqueeTestSupport"]),
        .testTarget(name: "MarqueeGatewayTests", dependencies: ["MarqueeGateway"]),
        .testTarget(name: "EndToEndTests", dependencies: ["MarqueeHTTP", "MarqueeTestSupport"]),
    ]
)

for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + swiftSettings
}
