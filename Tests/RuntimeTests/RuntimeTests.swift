import Agent
import Drivers
import Foundation
import Manifest
import Planning
import Runtime
import State
import Testing
import Traffic

@Suite(.serialized)
struct RuntimeTests {
    @Test func applyTwiceWithNoChangeRestartsNothing() async throws {
        let sandbox = try await Sandbox.make()
        let listen = try FreePort.pick()
        let secrets = "\(sandbox.dir)/secrets.env"
        try "# host secrets\nAPI_TOKEN=\"s3cr3t-value\"\n".write(toFile: secrets, atomically: true, encoding: .utf8)
        var desired = desiredShop(listen: listen, live: .blue, colors: [.blue: ["LOG_LEVEL": "info"], .green: [:]])
        desired.apps["shop"]!.environment.colors[.blue]!.envFiles = [secrets]

        let first = try await sandbox.reconciler().reconcile(desired)
        #expect(first.outcome == .applied, "\(String(describing: first.failure))")
        let before = try sandbox.store.colors().map { "\($0.color):\($0.pid ?? 0)" }
        #expect(before.count == 2)
        #expect(await get(port: listen)?.body == "blue")

        let second = try await sandbox.reconciler().reconcile(desired)
        #expect(second.plan.steps.isEmpty, "\(second.plan.steps)")
        #expect(second.outcome == .applied)
        #expect(try sandbox.store.colors().map { "\($0.color):\($0.pid ?? 0)" } == before)

        let port = try #require(try sandbox.store.colors().first { $0.color == .blue }?.port)
        let env = try #require(await get(port: port, path: "/env"))
        let values = try JSONSerialization.jsonObject(with: Data(env.body.utf8)) as? [String: String] ?? [:]
        #expect(values["PORT"] == String(port))
        #expect(values["TEAL_APP"] == "shop" && values["TEAL_COLOR"] == "blue" && values["TEAL_SCHEMA"] == "0001_init")
        #expect(values["DATABASE_PATH"] == "\(sandbox.dir)/shop.db")
        #expect(values["DATABASE_URL"] == "sqlite://\(sandbox.dir)/shop.db")
        #expect(values["API_TOKEN"] == "s3cr3t-value" && values["LOG_LEVEL"] == "info")
        #expect(values["CWD"] == RuntimePaths(dataDir: sandbox.dir).appFolder(app: "shop", commit: "c0ffee"))
        let journal = try sandbox.store.journalEntries(commit: "c0ffee").map(\.step.step.summary).joined(separator: "\n")
        #expect(!journal.contains("s3cr3t"))
        await sandbox.tearDown()
    }

    @Test func aColorThatNeverBecomesHealthyNeverGetsTraffic() async throws {
        let sandbox = try await Sandbox.make()
        let listen = try FreePort.pick()
        let desired = desiredShop(listen: listen, live: .blue, colors: [.blue: ["UNHEALTHY": "1"]])

        let plan = try await sandbox.reconciler().plan(desired)
        let route = try #require(plan.steps.first { if case .route = $0.step { true } else { false } })
        #expect(route.reason.contains("traffic.yaml asks for all traffic to blue"))

        let report = try await sandbox.reconciler().reconcile(desired)
        #expect(report.outcome == .failed)
        let failure = try #require(report.failure)
        #expect(failure.error.contains("did not become healthy within"), "\(failure.error)")
        #expect(failure.error.contains("answered 500"))
        #expect(!report.completed.contains { if case .route = $0.step { true } else { false } })
        #expect(await sandbox.router.routes["shop"] == nil)
        #expect(try sandbox.store.colors().isEmpty)
        await sandbox.tearDown()
    }

    @Test func aKilledColorIsRestartedAndGetsNoTrafficWhileDown() async throws {
        let sandbox = try await Sandbox.make()
        let listen = try FreePort.pick()
        let desired = desiredShop(listen: listen, live: .blue, colors: [.blue: [:]])
        let report = try await sandbox.reconciler().reconcile(desired)
        #expect(report.outcome == .applied, "\(String(describing: report.failure))")
        let original = try #require(try sandbox.store.colors().first)
        #expect(await get(port: listen)?.body == "blue")

        kill(original.pid!, SIGKILL)
        _ = await original.identity!.waitForExit(within: .seconds(5))
        let health = desired.apps["shop"]!.environment
        let supervisor = sandbox.supervisor(settings: { _, _ in ColorSupervisor.Settings(health: health.health, database: health.database) })
        await supervisor.setMinimumDelay(.seconds(1))
        await supervisor.checkOnce()

        let deadline = ContinuousClock.now + .seconds(15)
        var restarted: ColorRecord?
        while ContinuousClock.now < deadline {
            if let record = try sandbox.store.colors().first, record.pid != original.pid, record.identity?.isAlive == true,
               await sandbox.router.routes["shop"]?.upstreams["blue"]?.up == true {
                restarted = record
                break
            }
            await supervisor.checkOnce()
            try await Task.sleep(for: .milliseconds(100))
        }
        let replacement = try #require(restarted)
        #expect(replacement.port != original.port || replacement.pid != original.pid)
        #expect(await get(port: listen)?.body == "blue")
        let counters = await sandbox.router.counters(app: "shop")
        #expect(counters["shop"]?["blue"]?.failures == 0)
        await sandbox.tearDown()
    }

    @Test func aMarkedDownColorGetsA503NotAConnectionToADeadProcess() async throws {
        let sandbox = try await Sandbox.make()
        let listen = try FreePort.pick()
        let desired = desiredShop(listen: listen, live: .blue, colors: [.blue: [:]])
        _ = try await sandbox.reconciler().reconcile(desired)
        let record = try #require(try sandbox.store.colors().first)
        kill(record.pid!, SIGKILL)
        _ = await record.identity!.waitForExit(within: .seconds(5))
        let supervisor = sandbox.supervisor(settings: { _, _ in nil })
        await supervisor.checkOnce()
        #expect(await sandbox.router.routes["shop"]?.upstreams["blue"]?.up == false)
        #expect(await get(port: listen)?.status == 503)
        #expect(await sandbox.router.counters(app: "shop")["shop"]?["blue"]?.failures == 0)
        await sandbox.tearDown()
    }

    @Test func aRunningColorsLogIsRotatedWithoutLosingItsNextLine() async throws {
        let sandbox = try await Sandbox.make()
        let listen = try FreePort.pick()
        _ = try await sandbox.reconciler().reconcile(desiredShop(listen: listen, live: .blue, colors: [.blue: [:]]))
        let record = try #require(try sandbox.store.colors().first)
        let port = try #require(record.port)
        let log = RuntimePaths(dataDir: sandbox.dir).log(app: "shop", color: .blue)
        #expect(await get(port: port, path: "/say/3000")?.body == "said")
        let supervisor = sandbox.supervisor(logLimit: 1024, settings: { _, _ in nil })
        await supervisor.checkOnce()
        let rotated = try String(contentsOfFile: "\(log).1", encoding: .utf8)
        #expect(rotated.contains(String(repeating: "x", count: 3000)))
        #expect(await get(port: port, path: "/say/5")?.body == "said")
        // The color kept its descriptor and appends: its next line starts the emptied file, with no hole before it.
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "xxxxx\n")
        #expect(try sandbox.store.colors().first?.pid == record.pid)
        await sandbox.tearDown()
    }
}

@Suite struct StatusReportTests {
    /// Status probes each color with its app's own health check, not a fixed path.
    @Test func statusProbesTheAppsOwnHealthPath() async throws {
        let sandbox = try await Sandbox.make()
        // With UNHEALTHY set the test app fails /healthz but answers 200 on any other path.
        var desired = desiredShop(listen: try FreePort.pick(), live: .blue, colors: [.blue: ["UNHEALTHY": "1"]])
        desired.apps["shop"]!.environment.health.path = "/ready"
        let report = try await sandbox.reconciler().reconcile(desired)
        #expect(report.outcome == .applied, "\(String(describing: report.failure))")
        let status = try await StatusReport.gather(store: sandbox.store, drivers: sandbox.drivers(desired))
        let blue = try #require(status.apps.first?.colors.first)
        #expect(blue.running && blue.healthy, "\(blue)")
        #expect(try sandbox.store.colors().first?.health?.path == "/ready")
        await sandbox.tearDown()
    }
}
