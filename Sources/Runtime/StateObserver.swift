import Foundation
import Synchronization
import Manifest
import Planner
import Schema
import State
import Traffic

/// Builds the observed state from the state store refined by live probes: processes, health, router, databases.
public struct StateObserver {
    public let dataDir: String
    public let store: StateStore

    public init(dataDir: String, store: StateStore) {
        self.dataDir = dataDir
        self.store = store
    }

    public func observe(desired: DesiredState) async throws -> ObservedState {
        var observed = try store.recordedState()
        let paths = RuntimePaths(dataDir: dataDir)
        for record in try store.colors() {
            guard var color = observed.apps[record.app]?.colors[record.color] else { continue }
            let alive = record.identity?.isAlive ?? false
            color.running = alive
            if alive, let port = record.port {
                let health = desired.apps[record.app]?.environment.health ?? HealthCheck()
                color.healthy = await HealthProbe.probe(port: port, health: health).passed
            } else {
                color.healthy = false
            }
            observed.apps[record.app]?.colors[record.color] = color
        }
        let client = RouterClient(dataDir: dataDir)
        let routerRoutes: [String: AppRoute]? = await offThePool { try? client.routes() }
        if let routerRoutes {
            for app in Set(observed.apps.keys).union(routerRoutes.keys) {
                observed.apps[app, default: ObservedApp()].route = routerRoutes[app].map(Self.route) ?? .none
                observed.apps[app]?.listen = routerRoutes[app].map { ListenAddress(host: $0.listen.host, port: $0.listen.port) }
            }
        } else {
            for app in observed.apps.keys { observed.apps[app]?.route = .none }
        }
        for (app, manifest) in desired.apps {
            guard let file = paths.databaseFile(manifest.environment.database),
                  let schema = SchemaCache.shared.schema(of: file) else { continue }
            observed.apps[app, default: ObservedApp()].schema = schema
        }
        return observed
    }

    /// The route the router really serves: weights of colors it has an up upstream for.
    public static func route(_ appRoute: AppRoute) -> Route {
        var weights: [ColorName: Int] = [:]
        for (name, weight) in appRoute.weights {
            guard let color = ColorName(rawValue: name), appRoute.upstreams[name]?.up == true else { continue }
            weights[color] = weight
        }
        return Route(weights: weights)
    }
}

/// The migration history of app databases, read again only when the database file or its WAL
/// changed (size or modification time), so an idle agent does not open every database each pass.
final class SchemaCache: Sendable {
    static let shared = SchemaCache()

    private struct Stamp: Equatable {
        var database: [Int64]
        var wal: [Int64]
    }

    private let entries = Mutex<[String: (Stamp, ObservedSchema)]>([:])

    private static func stamp(_ path: String) -> [Int64] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        return [Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec), Int64(info.st_ino)]
    }

    /// nil when there is no database file yet or it cannot be read.
    func schema(of path: String) -> ObservedSchema? {
        let current = Stamp(database: Self.stamp(path), wal: Self.stamp(path + "-wal"))
        guard !current.database.isEmpty else { return nil }
        if let (stamp, schema) = entries.withLock({ $0[path] }), stamp == current { return schema }
        guard let status = try? SchemaEngine(path: path).status() else { return nil }
        let schema = ObservedSchemaReader.observed(status)
        // Opening the database may itself touch the WAL: remember the stamp as it is now.
        let after = Stamp(database: Self.stamp(path), wal: Self.stamp(path + "-wal"))
        entries.withLock { $0[path] = (after, schema) }
        return schema
    }
}
