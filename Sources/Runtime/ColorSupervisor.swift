import Foundation
import Logging
import Manifest
import State
import Traffic

/// Restarts colors whose process died, with exponential backoff. A dead color is marked down in the
/// router at once and marked up again only once its replacement is healthy.
public actor ColorSupervisor {
    private struct Backoff {
        var failures = 0
        var nextAttempt = ContinuousClock.now
    }

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

    public let dataDir: String
    private let store: StateStore
    private let launcher: ColorLauncher
    private let client: RouterClient
    private let settings: @Sendable (_ app: String, _ color: ColorName) -> Settings?
    private let logger: Logger
    private var backoff: [String: Backoff] = [:]
    /// The first and the longest wait between restart attempts.
    public var minimumDelay: Duration = .milliseconds(500)
    public var maximumDelay: Duration = .seconds(30)
    /// How long a replacement that failed has between SIGTERM and SIGKILL.
    public var stopGrace: Duration = .seconds(5)
    /// A running color's log is rotated when it grows past this many bytes.
    public var logLimit = LogRotation.defaultLimit

    /// `settings` gives a color's health check, database and desired spec (from the desired state), nil when
    /// the app or the color is not desired.
    public init(dataDir: String, store: StateStore,
                settings: @escaping @Sendable (_ app: String, _ color: ColorName) -> Settings?,
                logger: Logger = Logger(label: "teal.supervisor")) {
        self.dataDir = dataDir
        self.store = store
        launcher = ColorLauncher(dataDir: dataDir)
        client = RouterClient(dataDir: dataDir)
        self.settings = settings
        self.logger = logger
    }

    /// One pass: marks dead colors down and restarts those whose backoff has passed. Returns the colors restarted.
    @discardableResult
    public func checkOnce() async -> [String] {
        var restarted: [String] = []
        let records = (try? store.colors()) ?? []
        let paths = RuntimePaths(dataDir: dataDir)
        for record in records where record.identity?.isAlive == true {
            LogRotation.rotateIfNeeded(paths.log(app: record.app, color: record.color), limit: logLimit)
        }
        for record in records where record.identity?.isAlive != true {
            let key = "\(record.app)/\(record.color)"
            let client = self.client
            await offThePool { try? client.mark(app: record.app, color: record.color.rawValue, up: false) }
            var state = backoff[key] ?? Backoff()
            guard ContinuousClock.now >= state.nextAttempt else { continue }
            guard let wanted = settings(record.app, record.color) else {
                logger.debug("dead color is not desired; left to the reconcile pass", metadata: ["color": "\(key)"])
                continue
            }
            if let spec = wanted.spec, spec != record.spec {
                logger.info("dead color runs an outdated spec; left to the reconcile pass", metadata: ["color": "\(key)"])
                continue
            }
            do {
                try await restart(record, settings: wanted)
                backoff[key] = nil
                restarted.append(key)
            } catch {
                state.failures += 1
                let delay = min(minimumDelay * (1 << min(state.failures, 16)), maximumDelay)
                state.nextAttempt = ContinuousClock.now + delay
                backoff[key] = state
                logger.error("restart failed", metadata: ["color": "\(key)", "error": "\(error)", "retry in": "\(delay)"])
            }
        }
        return restarted
    }

    public func setMinimumDelay(_ delay: Duration) { minimumDelay = delay }

    public func setLogLimit(_ bytes: Int) { logLimit = bytes }

    /// Calls `checkOnce` every `interval` until cancelled.
    public func run(interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            await checkOnce()
            try? await Task.sleep(for: interval)
        }
    }

    private func restart(_ record: ColorRecord, settings: Settings) async throws {
        let folder = RuntimePaths(dataDir: dataDir).appFolder(app: record.app, commit: record.specCommit)
        let replacement = try launcher.start(app: record.app, color: record.color, spec: record.spec, commit: record.specCommit,
                                             folder: folder, database: settings.database)
        do {
            try store.saveColor(replacement)
        } catch {
            await replacement.identity?.stop(grace: stopGrace)
            throw error
        }
        logger.warning("color died; restarted", metadata: ["color": "\(record.app)/\(record.color)", "pid": "\(replacement.pid ?? 0)"])
        do {
            try await HealthProbe.waitHealthy(port: replacement.port!, process: replacement.identity, health: settings.health,
                                              what: "\(record.app) \(record.color)",
                                              logPath: launcher.paths.log(app: record.app, color: record.color))
        } catch {
            // The record now names a stopped process, so the next attempt (or the reconcile pass) starts it again.
            await replacement.identity?.stop(grace: stopGrace)
            throw error
        }
        let client = self.client
        try await offThePool { () -> Result<Void, any Error> in
            Result {
                let routes = try client.routes()
                guard var route = routes[record.app] else { return }
                route.upstreams[record.color.rawValue] = Upstream(port: replacement.port!, up: true)
                try client.set(app: record.app, route: route)
            }
        }.get()
    }
}
