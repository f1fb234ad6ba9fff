import Foundation
import Manifest
import Planning
import Reconcile
import State

/// What runs in a data dir, with live probes: the router, each app's colors (instance, health through the app's
/// own health check, uptime, traffic share, requests), traffic and schema state. `teal status` prints it; the
/// agent serves it as `GET /status`.
public struct StatusReport: Codable, Sendable {
    public struct Color: Codable, Sendable {
        public var color: String
        public var release: String
        public var schema: String
        public var commit: String
        public var pid: Int32?
        public var port: Int?
        public var running: Bool
        public var healthy: Bool
        public var uptimeSeconds: Int?
        public var weight: Int
        public var requests: Int?
        public var inFlight: Int?
    }

    public struct App: Codable, Sendable {
        public var name: String
        public var listen: String?
        public var traffic: String
        public var weights: [String: Int]
        public var colors: [Color]
        public var schema: String?
    }

    public var routerPid: Int32?
    public var apps: [App]

    public init(routerPid: Int32?, apps: [App]) {
        self.routerPid = routerPid
        self.apps = apps
    }

    /// Probes what `store` records. Health is probed with the check each color was started with, at most
    /// `timeout` per probe.
    public static func gather(store: StateStore, drivers: ReconcileDrivers, metrics: (any ReconcileMetrics)? = nil,
                              timeout: Duration = .seconds(1)) async throws -> StatusReport {
        let driverHealth = await drivers.traffic.health()
        let routes = driverHealth.isAnswering ? ((try? await drivers.traffic.routes()) ?? [:]) : [:]
        let counters = driverHealth.isAnswering ? ((try? await drivers.traffic.counters()) ?? [:]) : [:]
        let records = try store.colors()
        let schemas = (try? store.schemas()) ?? [:]

        var apps: [App] = []
        for name in Set(records.map(\.app)).union(routes.keys).sorted() {
            let route = routes[name]?.effective ?? .none
            var colors: [Color] = []
            for record in records where record.app == name {
                let inspection = record.handle.map(drivers.runtime.inspect) ?? ColorInspection(alive: false)
                var health = record.health ?? HealthCheck()
                health.timeout = min(health.timeout, timeout)
                let healthy = inspection.alive ? await drivers.runtime.probe(record, health: health) : false
                metrics?.colorHealth(app: name, color: record.color, healthy: healthy)
                let counter = counters[name]?[record.color]
                colors.append(Color(
                    color: record.color.rawValue, release: record.spec.release, schema: record.spec.schema,
                    commit: String(record.specCommit.prefix(8)), pid: inspection.pid, port: record.port, running: inspection.alive,
                    healthy: healthy, uptimeSeconds: inspection.uptime.map { Int($0.components.seconds) },
                    weight: route.weight(of: record.color), requests: counter?.requests, inFlight: counter?.inFlight))
            }
            let schema = schemas[name].map { s in
                ([s.completed.last.map { "\($0.name) completed" }, s.inFlight.map { "\($0.name) in flight" }]
                    .compactMap { $0 }).joined(separator: ", ")
            }
            apps.append(App(name: name, listen: routes[name]?.listen.description, traffic: route.description,
                            weights: Dictionary(uniqueKeysWithValues: route.weights.map { ($0.key.rawValue, $0.value) }),
                            colors: colors, schema: schema))
        }
        var routerPid: Int32?
        if case .answering(let pid) = driverHealth { routerPid = pid }
        return StatusReport(routerPid: routerPid, apps: apps)
    }

    /// The JSON `teal status --json` prints and `GET /status` serves.
    public func json() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try encoder.encode(self))
    }
}
