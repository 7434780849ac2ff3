import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// One Prometheus registry per process, behind swift-metrics: Hummingbird's request metrics and
/// ours land in it, and every service's `/metrics` renders it. Bootstrapped once, however many
/// services the process runs (`marquee dev` runs several).
public enum ServiceMetrics {
    public static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = NIOLockedValueBox(false)

    public static func bootstrap() {
        let first = bootstrapped.withLockedValue { done -> Bool in
            defer { done = true }
            return !done
        }
        if first {
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.defaultDurationHistogramBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5].map { .seconds($0) }
            MetricsSystem.bootstrap(factory)
        }
    }

    /// The registry in Prometheus text format.
    public static func render() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
