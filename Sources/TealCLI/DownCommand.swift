import Agent
import ArgumentParser
import Foundation
import Reconcile
import Runtime
import State
import Traffic

/// `teal down`: stop every color and the router this data dir started.
struct DownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Stop every color and the router this data dir started.",
        discussion: "An agent that is stopping (after SIGTERM) is waited for, up to --grace; a running one must be stopped first.")

    @OptionGroup var data: DataDirOption

    @Option(help: "Seconds a color has to exit after SIGTERM before SIGKILL, and the longest wait for a stopping agent.")
    var grace = 10

    func run() async throws {
        let dataDir = data.path
        guard FileManager.default.fileExists(atPath: dataDir) else {
            throw CLIError("no teal data dir at \(dataDir) (pass --data-dir or set TEAL_DATA_DIR)")
        }
        // A running agent would start the colors again: it must be stopped first.
        let lock: DataDirLock
        do { lock = try await DataDirLock.acquire(dataDir: dataDir, waitingForStopping: .seconds(grace)) } catch { throw CLIError("\(error)") }
        defer { withExtendedLifetime(lock) {} }
        let store = try StateStore(dataDir: dataDir)
        let drivers = ReconcileDrivers.standard(repository: "", branch: "main", dataDir: dataDir)
        if await drivers.traffic.health().isAnswering {
            for app in (try? await drivers.traffic.routes())?.keys.sorted() ?? [] { try? await drivers.traffic.removeRoute(app: app) }
        }
        for record in try store.colors() {
            if let handle = record.handle, drivers.runtime.isAlive(handle) {
                await drivers.runtime.stop(handle, grace: .seconds(grace))
                print("stopped \(record.app) \(record.color) (\(drivers.runtime.inspect(handle).pid.map { "pid \($0)" } ?? handle.description))")
            }
            try store.removeColor(app: record.app, color: record.color)
        }
        for app in try store.routes().keys { try store.removeRoute(app: app) }
        let client = RouterClient(dataDir: dataDir)
        if let pid = client.ping() {
            try client.shutdown()
            _ = await ProcessIdentity.of(pid: pid)?.waitForExit(within: .seconds(10))
            print("stopped the router (pid \(pid))")
        }
    }
}

