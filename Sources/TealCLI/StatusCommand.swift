import ArgumentParser
import Foundation
import Manifest
import Runtime
import State
import Traffic

/// `teal status`: per app, each color's release, process, health and traffic share.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Colors, health and traffic per app.")

    @OptionGroup var data: DataDirOption

    @Flag(help: "Print the status as JSON.")
    var json = false

    @Option(help: "The health check path to probe colors with.")
    var healthPath = "/healthz"

    struct ColorStatus: Codable {
        var color: String
        var release: String
        var schema: String
        var commit: String
        var pid: Int32?
        var port: Int?
        var running: Bool
        var healthy: Bool
        var uptimeSeconds: Int?
        var weight: Int
        var requests: Int?
        var inFlight: Int?
    }

    struct AppStatus: Codable {
        var name: String
        var listen: String?
        var traffic: String
        var weights: [String: Int]
        var colors: [ColorStatus]
        var schema: String?
    }

    struct Report: Codable {
        var routerPid: Int32?
        var apps: [AppStatus]
    }

    func run() async throws {
        let dataDir = data.path
        let report = try await Self.report(dataDir: dataDir, healthPath: healthPath)
        let apps = report.apps
        let routerPid = report.routerPid
        if json {
            print(String(decoding: try Self.json(report), as: UTF8.self))
            return
        }
        print(routerPid.map { "router: running (pid \($0))" } ?? "router: not running")
        if apps.isEmpty { print("no apps are running in \(dataDir)") }
        for app in apps {
            print("\n\(app.name)\(app.listen.map { " on \($0)" } ?? ""): \(app.traffic)")
            if let schema = app.schema, !schema.isEmpty { print("  schema: \(schema)") }
            for c in app.colors {
                let state = !c.running ? "down" : c.healthy ? "healthy" : "unhealthy"
                let uptime = c.uptimeSeconds.map { " up \(Self.duration($0))" } ?? ""
                print("  \(c.color.padding(toLength: 6, withPad: " ", startingAt: 0)) release \(c.release)  \(state)  "
                    + "pid \(c.pid.map(String.init) ?? "-")  port \(c.port.map(String.init) ?? "-")\(uptime)  "
                    + "traffic \(c.weight)%\(c.requests.map { "  requests \($0)" } ?? "")")
            }
        }
    }

    /// The JSON `teal status --json` prints (also served by the agent's GET /status).
    static func json(_ report: Report) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try encoder.encode(report))
    }

    /// What runs in a data dir: router, colors with live process and health probes, traffic, schema.
    static func report(dataDir: String, healthPath: String = "/healthz") async throws -> Report {
        let store = try StateStore(dataDir: dataDir)
        let client = RouterClient(dataDir: dataDir, timeout: .seconds(2))
        let routerPid = client.ping()
        let routes = routerPid != nil ? ((try? client.routes()) ?? [:]) : [:]
        let counters = routerPid != nil ? ((try? client.stats()) ?? [:]) : [:]
        let records = try store.colors()
        let schemas = (try? store.schemas()) ?? [:]
        var health = HealthCheck()
        health.path = healthPath
        health.timeout = .seconds(1)

        var apps: [AppStatus] = []
        for name in Set(records.map(\.app)).union(routes.keys).sorted() {
            let route = routes[name].map(StateObserver.route) ?? .none
            var colors: [ColorStatus] = []
            for record in records where record.app == name {
                let identity = record.identity
                let running = identity?.isAlive ?? false
                let healthy = running ? await HealthProbe.probe(port: record.port ?? 0, health: health).passed : false
                let counter = counters[name]?[record.color.rawValue]
                colors.append(ColorStatus(
                    color: record.color.rawValue, release: record.spec.release, schema: record.spec.schema,
                    commit: String(record.specCommit.prefix(8)), pid: record.pid, port: record.port, running: running, healthy: healthy,
                    uptimeSeconds: running ? identity?.uptime.map { Int($0.components.seconds) } : nil,
                    weight: route.weight(of: record.color), requests: counter?.requests, inFlight: counter?.inFlight))
            }
            let schema = schemas[name].map { s in
                ([s.completed.last.map { "\($0.name) completed" }, s.inFlight.map { "\($0.name) in flight" }]
                    .compactMap { $0 }).joined(separator: ", ")
            }
            apps.append(AppStatus(name: name, listen: routes[name]?.listen.description, traffic: route.description,
                                  weights: Dictionary(uniqueKeysWithValues: route.weights.map { ($0.key.rawValue, $0.value) }),
                                  colors: colors, schema: schema))
        }
        return Report(routerPid: routerPid, apps: apps)
    }

    static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m\(seconds % 60)s" }
        return "\(seconds / 3600)h\(seconds / 60 % 60)m"
    }
}
