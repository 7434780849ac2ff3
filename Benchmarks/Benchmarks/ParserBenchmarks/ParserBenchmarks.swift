import Benchmark
import MarqueeHTTP
let benchmarks: @Sendable () -> Void = { Benchmark("x") { _ in } }
