import Foundation
import Logging
import Manifest
import Reconcile
import State

/// Restarts colors whose instance died, with exponential backoff, between reconcile passes. A dead color is
/// marked down in the traffic driver at once and up again only once its replacement is healthy. Color health
/// goes to the metrics on every pass, whoever scrapes.
public actor ColorSupervisor {
    /// What the supervisor needs from the desired state to restart one color.
    public struct Settings: Sendable {
        public var health: HealthCheck
        public var database: DatabaseLocation
        /// The color's desired spec, nil when the caller cannot tell. A record running another spec is not
        /// restarted: the next reconcile pass replaces it.
        public var spec: ColorSpec?

        public init(health: HealthCheck, database: DatabaseLocation, spec: ColorSpec? = nil) {
            self.health = health
            self.database = database
            self.spec = spec
        }
    }

    private let drivers: ReconcileDrivers
    private let store: StateStore
    private let settings: @Sendable (_ app: String, _ color: ColorName) async -> Settings?
    private let metrics: any ReconcileMetrics
    private let logger: Logger
    private var backoff: [String: (Backoff, ContinuousClock.Instant)] = [:]
    /// The first and the longest wait between restart attempts.
    public private(set) var minimumDelay: Duration = .milliseconds(500)
    public var maximumDelay: Duration = .seconds(30)
    /// How long a replacement that failed has between SIGTERM and SIGKILL.
    public var stopGrace: Duration = .seconds(5)
    /// A color restarted this many times within `crashloopWindow` is in a crash loop.
    public static let crashloopRestarts = 3
    public static let crashloopWindow: TimeInterval = 300
    /// Colors seen dead and not restarted yet, and colors reported in a crash loop.
    private var noticedDead: Set<String> = []
    private var crashlooping: Set<String> = []

    /// `settings` gives a color's health check, database and desired spec (from the desired state), nil when the
    /// app or the color is not desired.
    public init(drivers: ReconcileDrivers, store: StateStore,
                settings: @escaping @Sendable (_ app: String, _ color: ColorName) async -> Settings?,
                metrics: any ReconcileMetrics = NoMetrics(), logger: Logger = Logger(label: "teal.supervisor")) {
        self.drivers = drivers
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    public func setMinimumDelay(_ delay: Duration) { minimumDelay = delay }

    /// One pass: marks dead colors down and restarts those whose backoff has passed. Returns the colors restarted.
    @discardableResult
    public func checkOnce() async -> [String] {
        var restarted: [String] = []
        let records = (try? store.colors()) ?? []
        // Read only once a dead color is found: an idle pass touches nothing but the records.
        var suspensionsRead: Suspensions?
        for record in records {
            let key = "\(record.app)/\(record.color)"
            let alive = record.handle.map(drivers.runtime.isAlive) ?? false
            if alive {
                drivers.runtime.maintain(record)
                if crashlooping.contains(key), recentRestarts(record) < Self.crashloopRestarts {
                    crashlooping.remove(key)
                    metrics.colorCrashloop(app: record.app, color: record.color, crashloop: false)
                }
                continue
            }
            metrics.colorHealth(app: record.app, color: record.color, healthy: false)
            try? await drivers.traffic.mark(app: record.app, color: record.color, up: false)
            if noticedDead.insert(key).inserted {
                _ = try? store.addEvent(AgentEvent(app: record.app, color: record.color.rawValue, commit: record.specCommit, kind: "died",
                                                   message: "\(key) (release \(record.spec.release)) is not running"))
            }
            if suspensionsRead == nil { suspensionsRead = (try? store.suspensions()) ?? Suspensions() }
            if let suspension = suspensionsRead!.holding(record.app), !suspension.repairDrift {
                logger.debug("dead color of a suspended app; not restarted", metadata: ["color": "\(key)"])
                continue
            }
            if let (_, next) = backoff[key], ContinuousClock.now < next { continue }
            guard let wanted = await settings(record.app, record.color) else {
                logger.debug("dead color is not desired; left to the reconcile pass", metadata: ["color": "\(key)"])
                continue
            }
            if let spec = wanted.spec, spec != record.spec {
                logger.info("dead color runs an outdated spec; left to the reconcile pass", metadata: ["color": "\(key)"])
                continue
            }
            do {
                try await restart(record, settings: wanted)
                noticedDead.remove(key)
                restarted.append(key)
                metrics.colorRestarted(app: record.app, color: record.color)
                _ = try? store.addEvent(AgentEvent(app: record.app, color: record.color.rawValue, commit: record.specCommit, kind: "restart",
                                                   message: "\(key) (release \(record.spec.release)) died and was restarted"))
                let recent = recentRestarts(record)
                if recent >= Self.crashloopRestarts {
                    // A crash loop: restarts keep backing off even though each replacement got healthy.
                    var policy = backoff[key]?.0 ?? Backoff(initial: minimumDelay, maximum: maximumDelay)
                    let delay = policy.next()
                    backoff[key] = (policy, ContinuousClock.now + delay)
                    if crashlooping.insert(key).inserted { await reportCrashloop(record, restarts: recent) }
                } else {
                    backoff[key] = nil
                }
            } catch {
                var policy = backoff[key]?.0 ?? Backoff(initial: minimumDelay, maximum: maximumDelay)
                let delay = policy.next()
                backoff[key] = (policy, ContinuousClock.now + delay)
                logger.error("restart failed", metadata: ["color": "\(key)", "error": "\(error)", "retry in": "\(delay)"])
            }
        }
        return restarted
    }

    private func recentRestarts(_ record: ColorRecord) -> Int {
        (try? store.restarts(app: record.app, color: record.color.rawValue, commit: record.specCommit,
                             since: Date().addingTimeInterval(-Self.crashloopWindow))) ?? 0
    }

    /// A crash loop goes to the log, the metrics, the event log and the note of the commit that set the color's spec.
    private func reportCrashloop(_ record: ColorRecord, restarts: Int) async {
        let line = "crashloop: \(record.app) \(record.color) (release \(record.spec.release)) restarted \(restarts) times "
            + "in \(Int(Self.crashloopWindow / 60))m; see teal logs \(record.app) \(record.color)"
        logger.error("\(line)")
        metrics.colorCrashloop(app: record.app, color: record.color, crashloop: true)
        _ = try? store.addEvent(AgentEvent(app: record.app, color: record.color.rawValue, commit: record.specCommit, kind: "crashloop",
                                           message: line))
        guard (try? store.auditNote(commit: record.specCommit)) != nil else { return }
        try? store.appendToAuditNote(commit: record.specCommit, line: line)
        // This agent's own record of the commit, with the line, replaces its record in the note (other agents' stay).
        if let note = try? await drivers.source.note(for: record.specCommit), !note.contains(line),
           let own = try? store.auditNote(commit: record.specCommit) {
            try? await drivers.source.setNote(own, for: record.specCommit)
        }
    }

    private func restart(_ record: ColorRecord, settings: Settings) async throws {
        let folder = try await drivers.source.workingCopy(app: record.app, commit: record.specCommit)
        let replacement = try await drivers.runtime.start(ColorLaunch(app: record.app, color: record.color, spec: record.spec,
                                                                      commit: record.specCommit, folder: folder,
                                                                      database: settings.database,
                                                                      databaseEnvironment: drivers.schemas.colorEnvironment(for: settings.database, shape: record.spec.schema),
                                                                      health: settings.health))
        do {
            try store.saveColor(replacement)
        } catch {
            if let handle = replacement.handle { await drivers.runtime.stop(handle, grace: stopGrace) }
            throw error
        }
        logger.warning("color died; restarted", metadata: ["color": "\(record.app)/\(record.color)",
                                                            "handle": "\(replacement.handle?.description ?? "-")"])
        do {
            try await drivers.runtime.waitHealthy(replacement, health: settings.health)
        } catch {
            // The record now names a stopped instance, so the next attempt (or the reconcile pass) starts it again.
            if let handle = replacement.handle { await drivers.runtime.stop(handle, grace: stopGrace) }
            throw error
        }
        metrics.colorHealth(app: record.app, color: record.color, healthy: true)
        guard var route = try await drivers.traffic.routes()[record.app], let port = replacement.port else { return }
        route.upstreams[record.color] = ServedRoute.Upstream(port: port, up: true)
        try await drivers.traffic.setRoute(app: record.app, route)
    }
}
