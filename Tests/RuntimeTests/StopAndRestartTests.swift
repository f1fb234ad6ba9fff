import Agent
import Drivers
import Foundation
import Manifest
import Planning
import Runtime
import State
import Testing
import Traffic

extension RuntimeTests {
    /// Blue and green running, traffic on `live`.
    private func twoColors(_ sandbox: Sandbox, live: ColorName, env: [String: String] = [:]) async throws -> (DesiredState, Int) {
        let listen = try FreePort.pick()
        let desired = desiredShop(listen: listen, live: live, colors: [.blue: env, .green: env])
        let report = try await sandbox.reconciler().reconcile(desired)
        #expect(report.outcome == .applied, "\(String(describing: report.failure))")
        return (desired, listen)
    }

    private func record(_ sandbox: Sandbox, _ color: ColorName) throws -> ColorRecord? {
        try sandbox.store.colors(app: "shop").first { $0.color == color }
    }

    @Test func aColorWhoseTrafficLeftEarlierIsDrainedBeforeItStops() async throws {
        let sandbox = try await Sandbox.make()
        let (desired, listen) = try await twoColors(sandbox, live: .blue)
        let slow = Task { await get(port: listen, path: "/slow/1.5") }
        let deadline = ContinuousClock.now + .seconds(5)
        while await sandbox.router.counters(app: "shop")["shop"]?["blue"]?.inFlight ?? 0 == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let executor = sandbox.executor(desired)
        try await executor.run(.route(app: "shop", route: .live(.green)))
        // Planned after the switch, so the planner saw no traffic on blue and asked for no drain.
        try await executor.run(.stopColor(app: "shop", color: .blue, drain: false))

        let answer = await slow.value
        #expect(answer?.status == 200 && answer?.body == "blue", "\(String(describing: answer))")
        #expect(try record(sandbox, .blue) == nil)
        #expect(await get(port: listen)?.body == "green")
        await sandbox.tearDown()
    }

    @Test func stoppingFailsClosedWhileARunningRouterCannotTellItsRoutes() async throws {
        let sandbox = try await Sandbox.make()
        let (desired, _) = try await twoColors(sandbox, live: .green)
        let blue = try #require(try record(sandbox, .blue)?.identity)
        await sandbox.router.stop()
        let wedged = try UnansweringRouter(dataDir: sandbox.dir)
        let executor = sandbox.executor(desired)

        let clock = ContinuousClock()
        let started = clock.now
        let drained = await executor.waitForDrain(app: "shop", color: .blue, limit: .milliseconds(800))
        #expect(!drained, "a stats error must not count as drained")
        #expect(started.duration(to: clock.now) >= .milliseconds(800))

        await #expect {
            try await executor.run(.stopColor(app: "shop", color: .blue, drain: false))
        } throws: { error in
            "\(error)".contains("routes could not be read")
        }
        #expect(blue.isAlive)
        #expect(try record(sandbox, .blue) != nil)

        // No router process at all: nothing can send blue traffic, so it stops.
        await wedged.stop()
        try await executor.run(.stopColor(app: "shop", color: .blue, drain: true))
        #expect(!blue.isAlive)
        #expect(try record(sandbox, .blue) == nil)
        await sandbox.tearDown()
    }

    @Test func aReplacementThatNeverGetsHealthyIsStoppedAndRetried() async throws {
        let sandbox = try await Sandbox.make()
        let sick = "\(sandbox.dir)/sick"
        let listen = try FreePort.pick()
        let desired = desiredShop(listen: listen, live: .blue, colors: [.blue: ["UNHEALTHY_WHILE": sick]])
        let report = try await sandbox.reconciler().reconcile(desired)
        #expect(report.outcome == .applied, "\(String(describing: report.failure))")
        let original = try #require(try record(sandbox, .blue))

        FileManager.default.createFile(atPath: sick, contents: Data())
        kill(original.pid!, SIGKILL)
        _ = await original.identity!.waitForExit(within: .seconds(5))
        let environment = desired.apps["shop"]!.environment
        let supervisor = sandbox.supervisor(settings: { _, color in
            ColorSupervisor.Settings(health: environment.health, database: environment.database, spec: environment.colors[color])
        })
        await supervisor.setMinimumDelay(.milliseconds(100))
        #expect(await supervisor.checkOnce().isEmpty)
        let failed = try #require(try record(sandbox, .blue))
        #expect(failed.pid != original.pid)
        #expect(failed.identity?.isAlive != true, "the unhealthy replacement must not keep running")
        #expect(livePids(withEnvironment: "UNHEALTHY_WHILE=\(sick)").isEmpty)

        try FileManager.default.removeItem(atPath: sick)
        let deadline = ContinuousClock.now + .seconds(15)
        var restarted: [String] = []
        while restarted.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            restarted = await supervisor.checkOnce()
        }
        #expect(restarted == ["shop/blue"])
        #expect(try record(sandbox, .blue)?.identity?.isAlive == true)
        #expect(await sandbox.router.routes["shop"]?.upstreams["blue"]?.up == true)
        #expect(await get(port: listen)?.body == "blue")
        await sandbox.tearDown()
    }

    @Test func aDeadColorWithAnOutdatedSpecIsLeftToTheReconcilePass() async throws {
        let sandbox = try await Sandbox.make()
        let desired = desiredShop(listen: try FreePort.pick(), live: .blue, colors: [.blue: [:]])
        _ = try await sandbox.reconciler().reconcile(desired)
        let original = try #require(try record(sandbox, .blue))
        kill(original.pid!, SIGKILL)
        _ = await original.identity!.waitForExit(within: .seconds(5))

        let environment = desired.apps["shop"]!.environment
        var changed = original.spec
        changed.release = "2.0"
        let newer = changed
        let outdated = sandbox.supervisor(settings: { _, _ in
            ColorSupervisor.Settings(health: environment.health, database: environment.database, spec: newer)
        })
        #expect(await outdated.checkOnce().isEmpty)
        let undesired = sandbox.supervisor(settings: { _, _ in nil })
        #expect(await undesired.checkOnce().isEmpty)
        #expect(try record(sandbox, .blue)?.pid == original.pid)

        let current = sandbox.supervisor(settings: { _, _ in
            ColorSupervisor.Settings(health: environment.health, database: environment.database, spec: original.spec)
        })
        #expect(await current.checkOnce() == ["shop/blue"])
        await sandbox.tearDown()
    }

    @Test func aStartedColorIsStoppedWhenItsRecordCannotBeSaved() async throws {
        let sandbox = try await Sandbox.make()
        let marker = "TEAL_TEST_RUN=\(UUID().uuidString)"
        let desired = desiredShop(listen: try FreePort.pick(), live: nil, colors: [.blue: [:]])
        var spec = desired.apps["shop"]!.environment.colors[.blue]!
        spec.env["TEAL_TEST_RUN"] = String(marker.dropFirst("TEAL_TEST_RUN=".count))
        try sandbox.failColorWrites()

        await #expect(throws: (any Error).self) {
            try await sandbox.executor(desired).run(.startColor(app: "shop", color: .blue, spec: spec, commit: "c0ffee"))
        }
        let orphans = livePids(withEnvironment: marker)
        #expect(orphans.isEmpty, "process \(orphans) runs with no record")
        for pid in orphans { kill(pid, SIGKILL) }
        await sandbox.tearDown()
    }

    @Test func aRestartedColorIsStoppedWhenItsRecordCannotBeSaved() async throws {
        let sandbox = try await Sandbox.make()
        let marker = "TEAL_TEST_RUN=\(UUID().uuidString)"
        let desired = desiredShop(listen: try FreePort.pick(), live: .blue,
                                  colors: [.blue: ["TEAL_TEST_RUN": String(marker.dropFirst("TEAL_TEST_RUN=".count))]])
        _ = try await sandbox.reconciler().reconcile(desired)
        let original = try #require(try record(sandbox, .blue))
        kill(original.pid!, SIGKILL)
        _ = await original.identity!.waitForExit(within: .seconds(5))
        try sandbox.failColorWrites()

        let environment = desired.apps["shop"]!.environment
        let supervisor = sandbox.supervisor(settings: { _, _ in
            ColorSupervisor.Settings(health: environment.health, database: environment.database)
        })
        #expect(await supervisor.checkOnce().isEmpty)
        let orphans = livePids(withEnvironment: marker)
        #expect(orphans.isEmpty, "process \(orphans) runs with no record")
        for pid in orphans { kill(pid, SIGKILL) }
        #expect(try record(sandbox, .blue)?.pid == original.pid)
        await sandbox.tearDown()
    }
}
