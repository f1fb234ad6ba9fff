import Foundation
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
            guard let file = paths.databaseFile(manifest.environment.database), FileManager.default.fileExists(atPath: file),
                  let status = try? SchemaEngine(path: file).status() else { continue }
            observed.apps[app, default: ObservedApp()].schema = ObservedSchemaReader.observed(status)
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
