import Agent
import ArgumentParser
import Foundation
import Reconcile

/// `teal status`: per app, each color's release, process, health and traffic share.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Colors, health and traffic per app.",
        discussion: "Each color is probed with its app's own health check. Reads the data dir only; exit status 1 when it does not exist.")

    @OptionGroup var data: DataDirOption

    @Flag(help: "Print the status as JSON.")
    var json = false

    func run() async throws {
        let dataDir = data.path
        guard FileManager.default.fileExists(atPath: dataDir) else {
            throw CLIError("no teal data dir at \(dataDir) (pass --data-dir or set TEAL_DATA_DIR)")
        }
        let report: StatusReport
        if let store = try data.existingStore() {
            report = try await StatusReport.gather(store: store, drivers: .standard(repository: "", branch: "main", dataDir: dataDir))
        } else {
            report = StatusReport(routerPid: nil, apps: [])
        }
        if json {
            print(String(decoding: try report.json(), as: UTF8.self))
            return
        }
        print(report.routerPid.map { "router: running (pid \($0))" } ?? "router: not running")
        if let head = report.head { print(head.summary) }
        if let suspended = report.suspended { print("every app is \(suspended)") }
        if report.apps.isEmpty { print("no apps are running in \(dataDir)") }
        for app in report.apps {
            print("\n\(app.name)\(app.listen.map { " on \($0)" } ?? ""): \(app.traffic)")
            if let suspended = app.suspended { print("  \(suspended)") }
            if let schema = app.schema, !schema.isEmpty { print("  schema: \(schema)") }
            for c in app.colors {
                let uptime = c.uptimeSeconds.map { " up \(Self.duration($0))" } ?? ""
                print("  \(c.color.padding(toLength: 6, withPad: " ", startingAt: 0)) release \(c.release)  \(c.state)  "
                    + "pid \(c.pid.map(String.init) ?? "-")  port \(c.port.map(String.init) ?? "-")\(uptime)  "
                    + "restarts \(c.restarts)  traffic \(c.weight)%\(c.requests.map { "  requests \($0)" } ?? "")")
            }
        }
    }

    static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m\(seconds % 60)s" }
        return "\(seconds / 3600)h\(seconds / 60 % 60)m"
    }
}
