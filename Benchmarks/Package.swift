// swift-tools-version: 6.1
import PackageDescription

// A separate package so that building or testing the main package never compiles the benchmark
// tool and its dependencies. Run from this folder: `swift package --disable-sandbox benchmark`.

// MARK: - Dependencies

let marquee: Package.Dependency = .package(name: "marquee", path: "..")
// "MallocInterposer" alone: naming the trait turns off the package's other default trait
// ("RuntimeInterposer"), whose swift-runtime-interposer dependency the local mirror lacks.
let benchmark: Package.Dependency = .package(
    url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"])

let package = Package(
    name: "marquee-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [marquee, benchmark],
    targets: [
        // MARK: - Benchmarks
        .executableTarget(
            name: "ParserBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MarqueeHTTP", package: "marquee"),
            ],
            path: "Benchmarks/ParserBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(
            name: "PolicyBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MarqueeHTTP", package: "marquee"),
                .product(name: "MarqueeTokens", package: "marquee"),
                .product(name: "MarqueePolicy", package: "marquee"),
            ],
            path: "Benchmarks/PolicyBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
