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

    public let dataDir: String
    private let store: StateStore
    private let launcher: ColorLauncher
    private let client: RouterClient
    private let health: @Sendable (String) -> (HealthCheck, DatabaseLocation)?
    private let logger: Logger
    private var backoff: [String: Backoff] = [:]
    /// The first and the longest wait between restart attempts.
    public var minimumDelay: Duration = .milliseconds(500)
    public var maximumDelay: Duration = .seconds(30)

    /// `settings` gives an app's health check and database (from the desired state), nil for an unknown app.
    public init(dataDir: String, store: StateStore,
                settings: @escaping @Sendable (String) -> (HealthCheck, DatabaseLocation)?,
                logger: Logger = Logger(label: "teal.supervisor")) {
        self.dataDir = dataDir
        self.store = store
        launcher = ColorLauncher(dataDir: dataDir)
        client = RouterClient(dataDir: dataDir)
        health = settings
        self.logger = logger
    }

    /// One pass: marks dead colors down and restarts those whose backoff has passed. Returns the colors restarted.
    @discardableResult
    public func checkOnce() async -> [String] {
        var restarted: [String] = []
        let records = (try? store.colors()) ?? []
        for record in records where record.identity?.isAlive != true {
            let key = "\(record.app)/\(record.color)"
            let client = self.client
            await offThePool { try? client.mark(app: record.app, color: record.color.rawValue, up: false) }
            var state = backoff[key] ?? Backoff()
            guard ContinuousClock.now >= state.nextAttempt else { continue }
            do {
                try await restart(record)
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

    /// Calls `checkOnce` every `interval` until cancelled.
    public func run(interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            await checkOnce()
            try? await Task.sleep(for: interval)
        }
    }

    private func restart(_ record: ColorRecord) async throws {
        guard let (health, database) = health(record.app) else { throw RuntimeError("\(record.app) is not desired any more") }
        let folder = RuntimePaths(dataDir: dataDir).appFolder(app: record.app, commit: record.specCommit)
        let replacement = try launcher.start(app: record.app, color: record.color, spec: record.spec, commit: record.specCommit,
                                             folder: folder, database: database)
        try store.saveColor(replacement)
        logger.warning("color died; restarted", metadata: ["color": "\(record.app)/\(record.color)", "pid": "\(replacement.pid ?? 0)"])
        try await HealthProbe.waitHealthy(port: replacement.port!, process: replacement.identity, health: health,
                                          what: "\(record.app) \(record.color)", logPath: launcher.paths.log(app: record.app, color: record.color))
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
