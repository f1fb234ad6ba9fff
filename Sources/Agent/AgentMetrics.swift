import Foundation
import Metrics
import Prometheus

/// The agent's metrics, through swift-metrics with a Prometheus registry behind them.
public final class AgentMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// Creates the registry and makes it the process's metrics backend (once per process).
    public init() {
        registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    public func reconciled(outcome: String, seconds: Double) {
        Counter(label: "teal_reconciles_total", dimensions: [("outcome", outcome)]).increment()
        Metrics.Timer(label: "teal_reconcile_duration_seconds", dimensions: [("outcome", outcome)])
            .recordNanoseconds(Int64(seconds * 1_000_000_000))
    }

    public func currentCommit(app: String, commit: String, previous: String?) {
        if let previous, previous != commit {
            Gauge(label: "teal_app_commit_info", dimensions: [("app", app), ("commit", previous)]).record(0)
        }
        Gauge(label: "teal_app_commit_info", dimensions: [("app", app), ("commit", commit)]).record(1)
    }

    public func colorHealth(app: String, color: String, healthy: Bool) {
        Gauge(label: "teal_color_healthy", dimensions: [("app", app), ("color", color)]).record(healthy ? 1 : 0)
    }

    public func routerRequests(app: String, color: String, total: Int) {
        Gauge(label: "teal_router_requests", dimensions: [("app", app), ("color", color)]).record(Double(total))
    }

    public func backfill(app: String, migration: String, done: Int, total: Int) {
        Gauge(label: "teal_backfill_rows_done", dimensions: [("app", app), ("migration", migration)]).record(Double(done))
        Gauge(label: "teal_backfill_rows_total", dimensions: [("app", app), ("migration", migration)]).record(Double(total))
    }

    /// The Prometheus text exposition.
    public func render() -> String { registry.emitToString() }
}
