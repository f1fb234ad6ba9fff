import Foundation
import GRDB
import Manifest
import Planning
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
        #expect(try store.appliedVersions() == ["v1", "v2", "v3", "v4", "v5"])
        #expect(FileManager.default.fileExists(atPath: dir + "/state.db"))
        let mode = try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        let journal = try store.db.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
        // Reopening keeps the data and the version.
        try store.saveRoute(app: "shop", route: .live(.blue), listen: ListenAddress(host: "127.0.0.1", port: 8080))
        let again = try StateStore(dataDir: dir)
        #expect(try again.appliedVersions() == ["v1", "v2", "v3", "v4", "v5"])
        try again.setMeta("k", "v")
        #expect(try again.meta("k") == "v")
        #expect(try again.routes()["shop"]?.route == .live(.blue))
    }

    @Test func recordsColorsAndBuildsTheObservedState() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try store.recordedState() == ObservedState())
        let spec = ColorSpec(release: "1.0.0", command: ["python3", "app.py"], schema: "0001_create_users")
        var health = HealthCheck()
        health.path = "/ready"
        try store.saveColor(ColorRecord(app: "shop", color: .blue, spec: spec, specCommit: "abc",
                                        handle: ColorHandle(runtime: "process", id: "4242:99"), port: 40001, health: health))
        try store.saveRoute(app: "shop", route: .live(.blue), listen: nil)
        try store.saveSchema(app: "shop", database: "sqlite:shop.db",
                             schema: ObservedSchema(completed: [AppliedMigration(name: "0001_create_users", checksum: "x")]))
        let colors = try store.colors(app: "shop")
        #expect(colors.count == 1)
        #expect(colors[0].handle == ColorHandle(runtime: "process", id: "4242:99") && colors[0].port == 40001 && colors[0].spec == spec)
        #expect(colors[0].health?.path == "/ready")
        let observed = try store.recordedState().apps["shop"]
        #expect(observed?.colors[.blue]?.spec == spec)
        #expect(observed?.route == .live(.blue))
        #expect(observed?.schema.completed.map(\.name) == ["0001_create_users"])
        try store.removeColor(app: "shop", color: .blue)
        #expect(try store.colors().isEmpty)
    }

    /// Color records are read every supervisor second; what is read always follows what was last saved.
    @Test func colorsReadAgainFollowWhatWasSaved() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var spec = ColorSpec(release: "1.0.0", command: ["python3", "app.py"], schema: "0001_create_users")
        var health = HealthCheck()
        let save = { (spec: ColorSpec, handle: String, health: HealthCheck) in
            try store.saveColor(ColorRecord(app: "shop", color: .blue, spec: spec, specCommit: "abc",
                                            handle: ColorHandle(runtime: "process", id: handle), port: 40001, health: health))
        }
        try save(spec, "1:1", health)
        for _ in 0..<3 { #expect(try store.colors().first?.spec.release == "1.0.0") }
        spec.release = "1.0.1"
        health.timeout = .milliseconds(250)
        try save(spec, "2:2", health)
        for _ in 0..<3 {
            let record = try #require(try store.colors().first)
            #expect(record.spec == spec && record.handle?.id == "2:2" && record.health == health)
        }
        try store.saveRoute(app: "shop", route: .live(.blue), listen: nil)
        #expect(try store.routes()["shop"]?.route == .live(.blue))
        try store.saveRoute(app: "shop", route: .live(.green), listen: nil)
        #expect(try store.routes()["shop"]?.route == .live(.green))
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

    @Test func aStepKeepsTheRangeOfTheColorLogItWrote() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ids = try store.journal(commit: "c1", steps: [PlannedStep(.awaitHealthy(app: "shop", color: .blue), reason: "r"),
                                                          PlannedStep(.route(app: "shop", route: .live(.blue)), reason: "r")])
        let range = StepLogRange(app: "shop", color: "blue", inode: 42, from: 10, to: 20, hash: StepLogRange.hash(Array("0123456789".utf8)))
        try store.saveStepLog(ids[0], range)
        #expect(try store.stepLog(ids[0]) == range)
        #expect(try store.stepLog(ids[1]) == nil)
        #expect(try store.stepLog(999) == nil)
        #expect(try store.journalEntries(commit: "c1").map(\.log) == [range, nil])
        #expect(StepLogRange.hash(Array("a".utf8)) != StepLogRange.hash(Array("b".utf8)))
    }

    @Test func recordsAuditRecords() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try store.outcome(commit: "c1") == nil)
        var audit = AuditRecord(commit: "c1", outcome: .refused, host: "web-1", startedAt: Date(), finishedAt: Date())
        audit.errors = ["two migrations"]
        try store.record(audit)
        #expect(try store.outcome(commit: "c1") == .refused)
        #expect(try store.auditNote(commit: "c1") == audit.note)
    }

    /// A store written before colors had runtime handles: pid and start time become the process handle, and
    /// every other field survives.
    @Test func upgradesColorRecordsToRuntimeHandles() throws {
        let dir = NSTemporaryDirectory() + "teal-state-v2-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let spec = ColorSpec(release: "1.0.0", command: ["python3", "app.py"], schema: "0001_create_users")
        let queue = try DatabaseQueue(path: dir + "/state.db")
        try queue.write { db in
            try db.execute(sql: """
                CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                INSERT INTO grdb_migrations VALUES ('v1'), ('v2');
                CREATE TABLE colors (app TEXT NOT NULL, color TEXT NOT NULL, spec TEXT NOT NULL, spec_commit TEXT NOT NULL,
                    pid INTEGER, process_start_time INTEGER, port INTEGER, started_at REAL NOT NULL, PRIMARY KEY (app, color));
                CREATE TABLE routes (app TEXT PRIMARY KEY, route TEXT NOT NULL, listen TEXT, updated_at REAL NOT NULL);
                CREATE TABLE schema_state (app TEXT PRIMARY KEY, database TEXT NOT NULL, schema TEXT NOT NULL, updated_at REAL NOT NULL);
                CREATE TABLE reconciles (commit_id TEXT PRIMARY KEY, outcome TEXT NOT NULL, detail TEXT NOT NULL,
                    started_at REAL NOT NULL, finished_at REAL);
                CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, commit_id TEXT NOT NULL, position INTEGER NOT NULL,
                    step TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL, error TEXT, started_at REAL, finished_at REAL);
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                """)
            try db.execute(sql: "INSERT INTO colors VALUES ('shop', 'blue', ?, 'abc', 4242, 99, 40001, 0)",
                           arguments: [String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)])
        }
        try queue.close()
        let store = try StateStore(dataDir: dir)
        #expect(try store.appliedVersions().contains("v3"))
        let color = try #require(try store.colors().first)
        #expect(color.handle == ColorHandle(runtime: "process", id: "4242:99"))
        #expect(color.port == 40001 && color.spec == spec && color.specCommit == "abc" && color.health == nil)
    }

    @Test func readOnlyCommandsNeverCreateAStore() throws {
        let dir = NSTemporaryDirectory() + "teal-state-none-\(UUID().uuidString.prefix(8))"
        #expect(try StateStore(existingDataDir: dir) == nil)
        #expect(!FileManager.default.fileExists(atPath: dir))
    }
}
