import Foundation
import Logging
import Manifest
import Planning
import State

/// Runs one step of a plan through the seams (stage 5 runs every step through one).
public struct StepRunner: Sendable {
    let drivers: ReconcileDrivers
    let store: StateStore
    /// The desired state the steps were planned from (health checks, listen addresses, databases).
    let desired: DesiredState
    let stopGrace: Duration
    let metrics: any ReconcileMetrics
    let logger: Logger

    public init(drivers: ReconcileDrivers, store: StateStore, desired: DesiredState, stopGrace: Duration = .seconds(10),
                metrics: any ReconcileMetrics = NoMetrics(), logger: Logger = Logger(label: "teal.reconcile")) {
        self.drivers = drivers
        self.store = store
        self.desired = desired
        self.stopGrace = stopGrace
        self.metrics = metrics
        self.logger = logger
    }

    /// Runs one step to completion, or throws why it failed. A long step (a backfill) asks `shouldStop` as it
    /// goes and ends early, throwing, when it answers true.
    public func run(_ step: Step, shouldStop: @escaping @Sendable () -> Bool = { false }) async throws {
        switch step {
        case .startColor(let app, let color, let spec, let commit):
            try await startColor(app: app, color: color, spec: spec, commit: commit)
        case .awaitHealthy(let app, let color):
            try await awaitHealthy(app: app, color: color)
        case .route(let app, let route):
            try await applyRoute(app: app, route: route)
        case .stopColor(let app, let color, _):
            try await stopColor(app: app, color: color)
        case .startMigration(let app, let migration):
            let backend = try schema(app)
            let metrics = metrics
            try await backend.start(migration, progress: { done, total in
                metrics.backfill(app: app, migration: migration.name, done: done, total: total)
            }, shouldStop: shouldStop)
            try await recordSchema(app: app, backend: backend)
        case .completeMigration(let app, let migration):
            let backend = try schema(app)
            try await backend.complete(migration)
            try await recordSchema(app: app, backend: backend)
        case .rollbackMigration(let app, let migration):
            let backend = try schema(app)
            try await backend.rollback(migration)
            try await recordSchema(app: app, backend: backend)
        case .reopenMigration(let app, let migration):
            let backend = try schema(app)
            let metrics = metrics
            try await backend.reopen(migration, progress: { done, total in
                metrics.backfill(app: app, migration: migration, done: done, total: total)
            }, shouldStop: shouldStop)
            try await recordSchema(app: app, backend: backend)
        }
    }

    private func manifest(_ app: String) throws -> AppManifest {
        guard let manifest = desired.apps[app] else { throw ReconcileFailure.permanent("app \(app) is not in the desired state") }
        return manifest
    }

    private func record(_ app: String, _ color: ColorName) throws -> ColorRecord? {
        try store.colors(app: app).first { $0.color == color }
    }

    private func startColor(app: String, color: ColorName, spec: ColorSpec, commit: String) async throws {
        let manifest = try manifest(app)
        if let old = try record(app, color) {
            if let handle = old.handle, drivers.runtime.isAlive(handle) {
                logger.info("stopping previous instance", metadata: ["app": "\(app)", "color": "\(color)", "handle": "\(handle)"])
                await drivers.runtime.stop(handle, grace: stopGrace)
            }
            try store.removeColor(app: app, color: color)
        }
        let folder = try await drivers.source.workingCopy(app: app, commit: commit)
        let health = manifest.environment.health
        let database = manifest.environment.database
        let record = try await drivers.runtime.start(ColorLaunch(app: app, color: color, spec: spec, commit: commit, folder: folder,
                                                                 database: database,
                                                                 databaseEnvironment: drivers.schemas.colorEnvironment(for: database, shape: spec.schema),
                                                                 health: health))
        do {
            try store.saveColor(record)
        } catch {
            if let handle = record.handle { await drivers.runtime.stop(handle, grace: stopGrace) }
            throw error
        }
        logger.info("started color", metadata: ["app": "\(app)", "color": "\(color)", "release": "\(spec.release)",
                                                "handle": "\(record.handle?.description ?? "-")", "port": "\(record.port ?? 0)"])
        do {
            try await drivers.runtime.waitHealthy(record, health: health)
        } catch {
            if let handle = record.handle { await drivers.runtime.stop(handle, grace: stopGrace) }
            try? store.removeColor(app: app, color: color)
            throw error
        }
    }

    private func awaitHealthy(app: String, color: ColorName) async throws {
        let manifest = try manifest(app)
        guard let record = try record(app, color), record.port != nil else {
            throw ReconcileFailure.permanent("\(app) \(color) is not running")
        }
        try await drivers.runtime.waitHealthy(record, health: manifest.environment.health)
    }

    /// The served route for an app: every live color of the state store as an upstream, `route`'s weights.
    private func servedRoute(app: String, route: Route, traffic: TrafficManifest) throws -> ServedRoute {
        var upstreams: [ColorName: ServedRoute.Upstream] = [:]
        for record in try store.colors(app: app) {
            guard let port = record.port, let handle = record.handle, drivers.runtime.isAlive(handle) else { continue }
            upstreams[record.color] = .init(port: port)
        }
        for color in route.colors where upstreams[color] == nil {
            throw ReconcileFailure.permanent("\(app): cannot route to \(color): it is not running")
        }
        return ServedRoute(listen: traffic.listen, upstreams: upstreams, weights: route.weights, tls: traffic.tls,
                           trustedForwarders: traffic.trustedForwarders)
    }

    private func applyRoute(app: String, route: Route) async throws {
        try await drivers.traffic.ensureRunning()
        if let traffic = desired.apps[app]?.traffic {
            try await drivers.traffic.setRoute(app: app, try servedRoute(app: app, route: route, traffic: traffic))
            try store.saveRoute(app: app, route: route, listen: traffic.listen)
        } else {
            try await drivers.traffic.removeRoute(app: app)
            try store.removeRoute(app: app)
        }
        logger.info("routed", metadata: ["app": "\(app)", "route": "\(route)"])
    }

    /// Stops a color once no traffic can reach it: its route weight must be 0, and requests still in flight to
    /// it may finish (up to the app's drain time) whatever the plan assumed about its traffic.
    private func stopColor(app: String, color: ColorName) async throws {
        guard let record = try record(app, color) else { return }
        let routes: [String: ServedRoute]
        let driverRuns: Bool
        do {
            routes = try await drivers.traffic.routes()
            driverRuns = true
        } catch {
            guard await drivers.traffic.health() == .down else {
                throw ReconcileFailure.transient("\(app): not stopping \(color): the router runs but its routes could not be read, "
                    + "so traffic to \(color) cannot be ruled out (\(error))")
            }
            routes = [:]
            driverRuns = false
        }
        if let served = routes[app], (served.weights[color] ?? 0) > 0, served.upstreams[color] != nil {
            throw ReconcileFailure.permanent("\(app) \(color) still receives traffic; route away from it before stopping it")
        }
        if driverRuns {
            await waitForDrain(app: app, color: color, limit: desired.apps[app]?.environment.drain ?? .seconds(10))
        }
        if var served = routes[app], served.upstreams[color] != nil {
            served.upstreams[color] = nil
            try await drivers.traffic.setRoute(app: app, served)
        }
        if let handle = record.handle { await drivers.runtime.stop(handle, grace: stopGrace) }
        try store.removeColor(app: app, color: color)
        logger.info("stopped color", metadata: ["app": "\(app)", "color": "\(color)"])
    }

    /// Waits until the driver reports no request in flight to the color, or `limit` passes; true when drained.
    /// Counters that cannot be read count as requests still in flight.
    @discardableResult
    public func waitForDrain(app: String, color: ColorName, limit: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while true {
            let inFlight: Int? = (try? await drivers.traffic.counters()).map { $0[app]?[color]?.inFlight ?? 0 }
            if inFlight == 0 { return true }
            guard clock.now < deadline else { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        logger.warning("drain time over with requests in flight or unknown", metadata: ["app": "\(app)", "color": "\(color)"])
        return false
    }

    private func schema(_ app: String) throws -> any SchemaBackend {
        let environment = try manifest(app).environment
        return try drivers.schemas.backend(for: environment.database, options: environment.databaseOptions)
    }

    private func recordSchema(app: String, backend: any SchemaBackend) async throws {
        guard let schema = try await backend.observe() else { return }
        try store.saveSchema(app: app, database: backend.description, schema: schema)
    }
}
