import Foundation
import Logging
import Manifest
import Planner
import Schema
import State
import Traffic

/// Runs the steps of a plan against real processes, the router and the app databases.
/// `teal apply` uses it once; the agent reuses it for every reconcile pass.
public final class StepExecutor {
    public let dataDir: String
    public let store: StateStore
    public let launcher: ColorLauncher
    public let router: RouterLauncher
    /// The desired state the steps were planned from (health checks, listen addresses, databases).
    public var desired: DesiredState
    /// Gives the read-only folder of `apps/<app>/` at a commit.
    public let materialize: (_ app: String, _ commit: String) throws -> String
    /// How long a stopping color has between SIGTERM and SIGKILL.
    public var stopGrace: Duration = .seconds(10)
    private let logger: Logger

    public init(dataDir: String, store: StateStore, desired: DesiredState, router: RouterLauncher,
                materialize: @escaping (_ app: String, _ commit: String) throws -> String,
                logger: Logger = Logger(label: "teal.runtime")) {
        self.dataDir = dataDir
        self.store = store
        self.desired = desired
        self.router = router
        self.materialize = materialize
        self.logger = logger
        launcher = ColorLauncher(dataDir: dataDir)
    }

    /// Runs one step to completion or throws why it failed.
    public func run(_ step: Step) async throws {
        switch step {
        case .startColor(let app, let color, let spec, let commit):
            try await startColor(app: app, color: color, spec: spec, commit: commit)
        case .awaitHealthy(let app, let color):
            try await awaitHealthy(app: app, color: color)
        case .route(let app, let route):
            try await applyRoute(app: app, route: route)
        case .stopColor(let app, let color, let drain):
            try await stopColor(app: app, color: color, drain: drain)
        case .startMigration(let app, let migration):
            let engine = try schemaEngine(app: app)
            try await offThePool { Result { try engine.start(migration) } }.get()
            try recordSchema(app: app, engine: engine)
        case .completeMigration(let app, let migration):
            let engine = try schemaEngine(app: app)
            try await offThePool { Result { try engine.complete(migration) } }.get()
            try recordSchema(app: app, engine: engine)
        case .rollbackMigration(let app, let migration):
            let engine = try schemaEngine(app: app)
            try await offThePool { Result { try engine.rollback(migration) } }.get()
            try recordSchema(app: app, engine: engine)
        }
    }

    private func manifest(_ app: String) throws -> AppManifest {
        guard let manifest = desired.apps[app] else { throw RuntimeError("app \(app) is not in the desired state") }
        return manifest
    }

    private func record(_ app: String, _ color: ColorName) throws -> ColorRecord? {
        try store.colors(app: app).first { $0.color == color }
    }

    private func startColor(app: String, color: ColorName, spec: ColorSpec, commit: String) async throws {
        let manifest = try manifest(app)
        if let old = try record(app, color) {
            if let identity = old.identity, identity.isAlive {
                logger.info("stopping previous process", metadata: ["app": "\(app)", "color": "\(color)", "pid": "\(identity.pid)"])
                await identity.stop(grace: stopGrace)
            }
            try store.removeColor(app: app, color: color)
        }
        let folder = try materialize(app, commit)
        let record = try launcher.start(app: app, color: color, spec: spec, commit: commit, folder: folder,
                                        database: manifest.environment.database)
        do {
            try store.saveColor(record)
        } catch {
            await record.identity?.stop(grace: stopGrace)
            throw error
        }
        logger.info("started color", metadata: ["app": "\(app)", "color": "\(color)", "release": "\(spec.release)",
                                                "pid": "\(record.pid ?? 0)", "port": "\(record.port ?? 0)"])
        do {
            try await HealthProbe.waitHealthy(port: record.port!, process: record.identity, health: manifest.environment.health,
                                              what: "\(app) \(color) (release \(spec.release))",
                                              logPath: launcher.paths.log(app: app, color: color))
        } catch {
            await record.identity?.stop(grace: stopGrace)
            try? store.removeColor(app: app, color: color)
            throw error
        }
    }

    private func awaitHealthy(app: String, color: ColorName) async throws {
        let manifest = try manifest(app)
        guard let record = try record(app, color), let port = record.port else {
            throw RuntimeError("\(app) \(color) is not running")
        }
        try await HealthProbe.waitHealthy(port: port, process: record.identity, health: manifest.environment.health,
                                          what: "\(app) \(color)", logPath: launcher.paths.log(app: app, color: color))
    }

    /// The router route for an app: every live color of the state store as an upstream, `route`'s weights.
    public func routerRoute(app: String, route: Route, listen: ListenAddress) throws -> AppRoute {
        var upstreams: [String: Upstream] = [:]
        for record in try store.colors(app: app) {
            guard let port = record.port, record.identity?.isAlive == true else { continue }
            upstreams[record.color.rawValue] = Upstream(port: port)
        }
        for color in route.colors where upstreams[color.rawValue] == nil {
            throw RuntimeError("\(app): cannot route to \(color): it is not running")
        }
        return AppRoute(listen: Endpoint(host: listen.host, port: listen.port), upstreams: upstreams,
                        weights: Dictionary(uniqueKeysWithValues: route.weights.map { ($0.key.rawValue, $0.value) }))
    }

    private func applyRoute(app: String, route: Route) async throws {
        let listen = desired.apps[app]?.traffic?.listen
        try await router.ensureRunning()
        let client = router.client
        if let listen {
            let appRoute = try routerRoute(app: app, route: route, listen: listen)
            try await offThePool { Result { try client.set(app: app, route: appRoute) } }.get()
            try store.saveRoute(app: app, route: route, listen: listen)
        } else {
            try await offThePool { Result { try client.remove(app: app) } }.get()
            try store.removeRoute(app: app)
        }
        logger.info("routed", metadata: ["app": "\(app)", "route": "\(route)"])
    }

    /// Stops a color once no traffic can reach it: its route weight must be 0, and requests the router still
    /// has in flight to it may finish (up to the app's drain time) whatever the plan assumed about its traffic.
    private func stopColor(app: String, color: ColorName, drain _: Bool) async throws {
        guard let record = try record(app, color) else { return }
        let client = router.client
        let routerRuns: Bool
        let routes: [String: AppRoute]
        switch await offThePool({ Result { try client.routes() } }) {
        case .success(let current):
            routerRuns = true
            routes = current
        case .failure(let error):
            guard !router.processIsRunning else {
                throw RuntimeError("\(app): not stopping \(color): the router runs but its routes could not be read, "
                    + "so traffic to \(color) cannot be ruled out (\(error))")
            }
            routerRuns = false
            routes = [:]
        }
        if let appRoute = routes[app], (appRoute.weights[color.rawValue] ?? 0) > 0, appRoute.upstreams[color.rawValue] != nil {
            throw RuntimeError("\(app) \(color) still receives traffic; route away from it before stopping it")
        }
        if routerRuns {
            let limit = desired.apps[app]?.environment.drain ?? .seconds(10)
            await waitForDrain(app: app, color: color, limit: limit)
        }
        if var appRoute = routes[app], appRoute.upstreams[color.rawValue] != nil {
            appRoute.upstreams[color.rawValue] = nil
            let updated = appRoute
            try await offThePool { Result { try client.set(app: app, route: updated) } }.get()
        }
        await record.identity?.stop(grace: stopGrace)
        try store.removeColor(app: app, color: color)
        logger.info("stopped color", metadata: ["app": "\(app)", "color": "\(color)"])
    }

    /// Waits until the router reports no request in flight to the color, or `limit` passes; true when drained.
    /// A failed stats request counts as requests still in flight.
    @discardableResult
    public func waitForDrain(app: String, color: ColorName, limit: Duration) async -> Bool {
        let client = router.client
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while true {
            let inFlight: Int? = await offThePool {
                guard let stats = try? client.stats(app: app) else { return nil }
                return stats[app]?[color.rawValue]?.inFlight ?? 0
            }
            if inFlight == 0 { return true }
            guard clock.now < deadline else { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        logger.warning("drain time over with requests in flight or unknown", metadata: ["app": "\(app)", "color": "\(color)"])
        return false
    }

    private func schemaEngine(app: String) throws -> SchemaEngine {
        let location = try manifest(app).environment.database
        guard let file = launcher.paths.databaseFile(location) else {
            throw RuntimeError("\(app): migrations on PostgreSQL (\(location)) are not supported by this schema engine yet")
        }
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        return try SchemaEngine(path: file)
    }

    private func recordSchema(app: String, engine: SchemaEngine) throws {
        try store.saveSchema(app: app, database: engine.path, schema: ObservedSchemaReader.observed(try engine.status()))
    }
}

extension ColorRecord {
    /// The process this record names, when it has one.
    public var identity: ProcessIdentity? {
        guard let pid, let processStartTime else { return nil }
        return ProcessIdentity(pid: pid, startTime: processStartTime)
    }
}

/// Converts the schema engine's history into the planner's view.
public enum ObservedSchemaReader {
    public static func observed(_ status: SchemaStatus) -> ObservedSchema {
        ObservedSchema(
            completed: status.migrations.filter { $0.state == .completed }
                .map { PlannerMigration(name: $0.name, checksum: $0.checksum) },
            inFlight: status.inFlight.map { PlannerMigration(name: $0.name, checksum: $0.checksum) },
            inFlightBackfilling: status.inFlight?.state == .backfilling)
    }
}
