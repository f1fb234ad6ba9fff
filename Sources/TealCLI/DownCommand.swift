import Agent
import ArgumentParser
import Foundation
import Runtime
import State
import Traffic

/// `teal down`: stop every color and the router this data dir started.
struct DownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Stop every color and the router this data dir started.")

    @OptionGroup var data: DataDirOption

    @Option(help: "Seconds a color has to exit after SIGTERM before SIGKILL.")
    var grace = 10

    func run() async throws {
        let dataDir = data.path
        // A running agent would start the colors again: it must be stopped first.
        let lock: DataDirLock
        do { lock = try DataDirLock(dataDir: dataDir) } catch { throw CLIError("\(error)") }
        defer { withExtendedLifetime(lock) {} }
        let store = try StateStore(dataDir: dataDir)
        let client = RouterClient(dataDir: dataDir)
        if client.ping() != nil {
            for app in (try? client.routes())?.keys.sorted() ?? [] { try? client.remove(app: app) }
        }
        for record in try store.colors() {
            if let identity = record.identity, identity.isAlive {
                await identity.stop(grace: .seconds(grace))
                print("stopped \(record.app) \(record.color) (pid \(identity.pid))")
            }
            try store.removeColor(app: record.app, color: record.color)
        }
        for app in try store.routes().keys { try store.removeRoute(app: app) }
        if let pid = client.ping() {
            try client.shutdown()
            let router = ProcessIdentity.of(pid: pid)
            _ = await router?.waitForExit(within: .seconds(10))
            print("stopped the router (pid \(pid))")
        }
    }
}
