import Foundation
import Manifest
import Metrics
import Prometheus
import Reconcile
import State
import Synchronization

/// The agent's metrics, through swift-metrics with a Prometheus registry behind them. The pipeline and the
/// color supervisor record them as they go, so a scrape shows the last pass whoever asked for status.
public final class AgentMetrics: ReconcileMetrics, Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    /// Per app, the commit series now exposed (replaced, never accumulated).
    private let commits = Mutex<[String: (commit: String, gauge: Metrics.Gauge)]>([:])
    /// Per app and color, the router's request total last seen (the counter grows by the difference).
    private let requestTotals = Mutex<[String: Int]>([:])
    /// Handles recorded on every pass, made once per app and color.
    private let healthGauges = Mutex<[String: Metrics.Gauge]>([:])
    private let requestCounters = Mutex<[String: Metrics.Counter]>([:])
    /// Per app, the backfill last reported: for the status page's progress and rate.
    private let backfills = Mutex<[String: BackfillProgress]>([:])
    /// When a remote was last listed or fetched without an error.
    private let lastFetch = Mutex<ContinuousClock.Instant?>(nil)

    /// A registry of its own; the metrics go to it whatever the process's global metrics backend is.
    public init() {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
    }

    public func reconciled(outcome: Outcome, seconds: Double) {
        Metrics.Counter(label: "teal_reconciles_total", dimensions: [("outcome", outcome.rawValue)], factory: factory).increment()
        Metrics.Timer(label: "teal_reconcile_duration_seconds", dimensions: [("outcome", outcome.rawValue)], factory: factory)
            .recordNanoseconds(Int64(seconds * 1_000_000_000))
    }

    public func retried(failure: ReconcileFailure) {
        Metrics.Counter(label: "teal_reconcile_retries_total", factory: factory).increment()
    }

    public func currentCommit(app: String, commit: String) {
        commits.withLock { current in
            if let old = current[app] {
                if old.commit == commit { return }
                old.gauge.destroy()
            }
            let gauge = Metrics.Gauge(label: "teal_app_commit_info", dimensions: [("app", app), ("commit", commit)], factory: factory)
            gauge.record(1)
            current[app] = (commit, gauge)
        }
    }

    public func colorHealth(app: String, color: ColorName, healthy: Bool) {
        let gauge = healthGauges.withLock { gauges in
            if let gauge = gauges["\(app)/\(color)"] { return gauge }
            let gauge = Metrics.Gauge(label: "teal_color_healthy", dimensions: [("app", app), ("color", color.rawValue)], factory: factory)
            gauges["\(app)/\(color)"] = gauge
            return gauge
        }
        gauge.record(healthy ? 1 : 0)
    }

    public func requests(app: String, color: ColorName, total: Int) {
        let key = "\(app)/\(color)"
        let delta = requestTotals.withLock { totals -> Int in
            let previous = totals[key] ?? 0
            totals[key] = total
            // A router that restarted counts from zero again: everything it counted since is new.
            return total >= previous ? total - previous : total
        }
        let counter = requestCounters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Metrics.Counter(label: "teal_router_requests_total", dimensions: [("app", app), ("color", color.rawValue)],
                                          factory: factory)
            counters[key] = counter
            return counter
        }
        if delta > 0 { counter.increment(by: delta) }
    }

    public func colorRestarted(app: String, color: ColorName) {
        Metrics.Counter(label: "teal_color_restarts_total", dimensions: [("app", app), ("color", color.rawValue)], factory: factory).increment()
    }

    public func colorCrashloop(app: String, color: ColorName, crashloop: Bool) {
        Metrics.Gauge(label: "teal_color_crashloop", dimensions: [("app", app), ("color", color.rawValue)], factory: factory)
            .record(crashloop ? 1 : 0)
    }

    public func fetched(operation: String, seconds: Double) {
        Metrics.Timer(label: "teal_fetch_duration_seconds", dimensions: [("operation", operation)], factory: factory)
            .recordNanoseconds(Int64(seconds * 1_000_000_000))
        lastFetch.withLock { $0 = ContinuousClock.now }
    }

    public func fetchFailed(reason: String) {
        Metrics.Counter(label: "teal_fetch_errors_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    public func reportDelivered(target: String, delivered: Bool) {
        Metrics.Counter(label: delivered ? "teal_reports_delivered_total" : "teal_report_failures_total", dimensions: [("target", target)],
                        factory: factory).increment()
    }

    /// The backfill of each app last reported.
    public func backfillProgress() -> [String: BackfillProgress] { backfills.withLock { $0 } }

    public func backfill(app: String, migration: String, done: Int, total: Int) {
        backfills.withLock { all in
            let now = Date()
            if var progress = all[app], progress.migration == migration {
                progress.done = done
                progress.total = total
                let seconds = now.timeIntervalSince(progress.startedAt)
                progress.rowsPerSecond = seconds > 0 ? Double(done - progress.startDone) / seconds : nil
                progress.updatedAt = now
                all[app] = progress
            } else {
                all[app] = BackfillProgress(migration: migration, done: done, total: total, startDone: done, startedAt: now, updatedAt: now)
            }
        }
        let dimensions = [("app", app), ("migration", migration)]
        Metrics.Gauge(label: "teal_backfill_rows_done", dimensions: dimensions, factory: factory).record(Double(done))
        Metrics.Gauge(label: "teal_backfill_rows_total", dimensions: dimensions, factory: factory).record(Double(total))
    }

    /// The Prometheus text exposition.
    public func render() -> String {
        // The age is a property of the moment of the scrape.
        if let last = lastFetch.withLock({ $0 }) {
            let age = ContinuousClock.now - last
            Metrics.Gauge(label: "teal_fetch_last_success_age_seconds", factory: factory)
                .record(Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18)
        }
        return registry.emitToString()
    }
}

/// A running (or finished) backfill, as the schema engine reports it.
public struct BackfillProgress: Codable, Sendable, Hashable {
    public var migration: String
    public var done: Int
    public var total: Int
    public var startDone: Int
    public var startedAt: Date
    public var updatedAt: Date
    public var rowsPerSecond: Double?
}
