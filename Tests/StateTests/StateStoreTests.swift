import Foundation
import Manifest
import Planner
import Testing
@testable import State

@Suite struct StateStoreTests {
    func store() throws -> (StateStore, String) {
        let dir = NSTemporaryDirectory() + "teal-state-\(UUID().uuidString)"
        return (try StateStore(dataDir: dir), dir)
    }

    @Test func createsAVersionedWALDatabase() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try store.appliedVersions() == ["v1", "v2"])
        #expect(FileManager.default.fileExists(atPath: dir + "/state.db"))
        let mode = try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        let journal = try store.db.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
        // Reopening keeps the data and the version.
        try store.saveRoute(app: "shop", route: .live(.blue), listen: ListenAddress(host: "127.0.0.1", port: 8080))
        let again = try StateStore(dataDir: dir)
        #expect(try again.appliedVersions() == ["v1", "v2"])
        try again.setMeta("k", "v")
        #expect(try again.meta("k") == "v")
        #expect(try again.routes()["shop"]?.route == .live(.blue))
    }

    @Test func recordsColorsAndBuildsTheObservedState() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try store.recordedState() == ObservedState())
        let spec = ColorSpec(release: "1.0.0", command: ["python3", "app.py"], schema: "0001_create_users")
        try store.saveColor(ColorRecord(app: "shop", color: .blue, spec: spec, specCommit: "abc", pid: 4242, processStartTime: 99, port: 40001))
        try store.saveRoute(app: "shop", route: .live(.blue), listen: nil)
        try store.saveSchema(app: "shop", database: "sqlite:shop.db",
                             schema: ObservedSchema(completed: [AppliedMigration(name: "0001_create_users", checksum: "x")]))
        let colors = try store.colors(app: "shop")
        #expect(colors.count == 1)
        #expect(colors[0].pid == 4242 && colors[0].processStartTime == 99 && colors[0].port == 40001 && colors[0].spec == spec)
        let observed = try store.recordedState().apps["shop"]
        #expect(observed?.colors[.blue]?.spec == spec)
        #expect(observed?.route == .live(.blue))
        #expect(observed?.schema.completed.map(\.name) == ["0001_create_users"])
        try store.removeColor(app: "shop", color: .blue)
        #expect(try store.colors().isEmpty)
    }

    @Test func journalsStepsAndFindsUnfinishedOnes() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let steps = [PlannedStep(.route(app: "shop", route: .live(.green)), reason: "switch"),
                     PlannedStep(.stopColor(app: "shop", color: .blue, drain: true), reason: "gone")]
        let ids = try store.journal(commit: "c1", steps: steps)
        #expect(ids.count == 2)
        try store.markStep(ids[0], .running)
        try store.markStep(ids[0], .done)
        try store.markStep(ids[1], .running)
        let unfinished = try store.unfinishedSteps()
        #expect(unfinished.map(\.id) == [ids[1]])
        #expect(unfinished.first?.step == steps[1])
        #expect(unfinished.first?.status == .running)
        try store.markStep(ids[1], .failed, error: "boom")
        #expect(try store.unfinishedSteps().isEmpty)
        #expect(try store.journalEntries(commit: "c1").map(\.status) == [.done, .failed])
        #expect(try store.journalEntries(commit: "c1").last?.error == "boom")
    }

    @Test func recordsOutcomes() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try store.outcome(commit: "c1") == nil)
        try store.recordOutcome(commit: "c1", outcome: .refused, detail: "two migrations", startedAt: Date())
        #expect(try store.outcome(commit: "c1")?.outcome == .refused)
        #expect(try store.outcome(commit: "c1")?.detail == "two migrations")
    }
}
