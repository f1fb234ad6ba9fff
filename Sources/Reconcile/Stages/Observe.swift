import Manifest
import Planning
import State

extension ReconcilePipeline {
    /// Stage 3: the state store's record of what teal started, refined by live probes: is each color's instance
    /// alive and healthy, what the traffic driver serves, each app database's migration history. Color health
    /// and request counters go to the metrics on every pass.
    func observe(_ desired: DesiredState) async throws -> ObservedState {
        let records = try store.colors()
        var observed = try store.recordedState(colors: records)
        for record in records {
            guard var color = observed.apps[record.app]?.colors[record.color] else { continue }
            let alive = record.handle.map(drivers.runtime.isAlive) ?? false
            color.running = alive
            if alive {
                let health = desired.apps[record.app]?.environment.health ?? record.health ?? HealthCheck()
                color.healthy = await drivers.runtime.probe(record, health: health)
            } else {
                color.healthy = false
            }
            metrics.colorHealth(app: record.app, color: record.color, healthy: color.healthy)
            observed.apps[record.app]?.colors[record.color] = color
        }
        let served = try? await drivers.traffic.routes()
        if let served {
            for app in Set(observed.apps.keys).union(served.keys) {
                observed.apps[app, default: ObservedApp()].route = served[app]?.effective ?? .none
                observed.apps[app]?.listen = served[app]?.listen
                observed.apps[app]?.tls = served[app]?.tls
                observed.apps[app]?.trustedForwarders = served[app]?.trustedForwarders
            }
            if let counters = try? await drivers.traffic.counters() {
                for (app, colors) in counters {
                    for (color, counter) in colors { metrics.requests(app: app, color: color, total: counter.requests) }
                }
            }
        } else {
            for app in observed.apps.keys { observed.apps[app]?.route = .none }
        }
        for (app, manifest) in desired.apps {
            // An address the router does not serve yet must be free, or the plan is refused before any step runs.
            if let listen = manifest.traffic?.listen, observed.apps[app]?.listen != listen,
               let holder = await drivers.traffic.listenHolder(listen) {
                observed.apps[app, default: ObservedApp()].listenHeldBy = holder
            }
            let backend = try drivers.schemas.backend(for: manifest.environment.database, options: manifest.environment.databaseOptions)
            guard let schema = try await backend.observe() else { continue }
            observed.apps[app, default: ObservedApp()].schema = schema
        }
        return observed
    }
}
