import Foundation
import GRDB
import Logging
import Manifest
import Testing
@testable import Schema

@Suite struct LifecycleTests {
    @Test func failingUpDuringBackfillUndoesStartCompletely() throws {
        let s = try Scratch(usersSetup)
        let before = try s.rows("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE '\\_teal\\_%' ESCAPE '\\' ORDER BY name")
        let engine = try s.engine(batchSize: 1)
        let m = migration("0002_bad", [
            .addColumn(AddColumn(table: "users", column: column("first_name"), up: "CASE WHEN id = 3 THEN json_extract('not json', '$.a') ELSE name END")),
            .dropColumn(DropColumn(table: "users", column: "name", down: "first_name")),
        ])
        let error = #expect(throws: SchemaError.self) { try engine.start(m) }
        #expect(error?.description.contains("0002_bad") == true)
        #expect(error?.description.contains("malformed JSON") == true)
        let after = try s.rows("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE '\\_teal\\_%' ESCAPE '\\' ORDER BY name")
        #expect(after == before)
        #expect(try engine.status().migrations.isEmpty)
        #expect(try s.int("SELECT count(*) FROM users") == 4)
        #expect(try s.integrity() == "ok")
    }

    @Test func badExpressionIsRejectedBeforeAnythingChanges() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let m = migration("0002_bad", [.addColumn(AddColumn(table: "users", column: column("x"), up: "no_such_function(name)"))])
        let error = #expect(throws: SchemaError.self) { try engine.start(m) }
        #expect(error?.description.contains("operations[0] (add_column)") == true)
        #expect(error?.description.contains("no such function") == true)
        #expect(try s.columns("users") == ["id", "name", "age"])
        #expect(try engine.status().migrations.isEmpty)
        #expect(throws: SchemaError.self) { try engine.validate(m) }
    }

    @Test func missingTableNamesTheOperation() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let m = migration("0002_x", [.dropColumn(DropColumn(table: "nope", column: "a"))])
        let error = #expect(throws: SchemaError.self) { try engine.validate(m) }
        #expect(error?.description == "migration 0002_x, operations[0] (drop_column): table nope does not exist")
    }

    @Test func changedFileAndSecondInFlightAreRefused() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        try engine.start(splitName)
        var changed = splitName
        changed.checksum = "other"
        let mismatch = #expect(throws: SchemaError.self) { try engine.start(changed) }
        #expect(mismatch?.description.contains("changed after it was applied") == true)
        #expect(throws: SchemaError.self) { try engine.verifyChecksums([changed]) }
        let other = migration("0003_email", [.addColumn(AddColumn(table: "users", column: column("email")))])
        let busy = #expect(throws: SchemaError.self) { try engine.start(other) }
        #expect(busy?.description.contains("in flight") == true)
        try engine.complete(splitName.name)
        #expect(throws: SchemaError.self) { try engine.rollback(splitName.name) }
    }

    @Test func lockedDatabaseFailsCleanly() throws {
        let s = try Scratch(usersSetup)
        let engine = try SchemaEngine(path: s.path, options: SchemaEngineOptions(busyTimeout: 0.2), logger: Logger(label: "test"))
        let holder = try DatabaseQueue(path: s.path)
        try holder.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            let error = #expect(throws: SchemaError.self) { try engine.start(splitName) }
            #expect(error?.description.contains("locked") == true)
            try db.execute(sql: "ROLLBACK")
        }
        #expect(try s.columns("users") == ["id", "name", "age"])
        try engine.start(splitName)
        #expect(try engine.status().inFlight?.name == splitName.name)
    }

    @Test func rollbackUsesStoredDefinition() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        try engine.start(splitName)
        let stored = try engine.status().inFlight
        #expect(stored?.definition == splitName)
        let reopened = try s.engine()
        try reopened.rollback(splitName.name)
        #expect(try s.columns("users") == ["id", "name", "age"])
    }

    @Test func progressIsReported() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine(batchSize: 1)
        let seen = Seen()
        try engine.start(splitName) { done, total in seen.add(done, total) }
        #expect(seen.values.last.map { $0 == (4, 4) } == true)
        #expect(seen.values.count == 5)
    }

    /// A newer commit stops a running backfill within one batch; the migration stays `backfilling`, and either
    /// rollback undoes it (sqlite_schema as before) or start resumes it where it stopped.
    @Test func backfillStopsWithinOneBatchWhenAsked() throws {
        let s = try Scratch(usersSetup + "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) INSERT INTO users (name) SELECT 'User ' || i FROM n;")
        let before = try s.schema()
        let engine = try s.engine(batchSize: 10)
        let seen = Seen()
        let stop: @Sendable () -> Bool = { (seen.values.last?.0 ?? 0) >= 100 }
        let error = #expect(throws: SchemaError.self) { try engine.start(splitName, progress: { seen.add($0, $1) }, shouldStop: stop) }
        #expect(error?.isInterruption == true, "\(String(describing: error))")
        #expect(try engine.status().inFlight?.state == .backfilling)
        let done = seen.values.last?.0 ?? 0
        #expect(done >= 100 && done < 404)
        #expect(try s.int("SELECT count(*) FROM users WHERE first_name IS NOT NULL") == done)
        try engine.rollback(splitName.name)
        #expect(try s.schema() == before)
        #expect(try engine.status().migrations.last?.state == .rolledBack)

        let again = Seen()
        let error2 = #expect(throws: SchemaError.self) {
            try engine.start(splitName, progress: { again.add($0, $1) }, shouldStop: { (again.values.last?.0 ?? 0) >= 200 })
        }
        #expect(error2?.isInterruption == true)
        try s.exec("INSERT INTO users (name) VALUES ('Written Meanwhile')")
        try engine.start(splitName)
        #expect(try engine.status().inFlight?.state == .started)
        #expect(try s.int("SELECT count(*) FROM users WHERE first_name IS NULL") == 0)
        #expect(try s.value("SELECT last_name FROM users WHERE name = 'Written Meanwhile'") == "Meanwhile")
    }

    /// Kills `teal schema start` after a few backfill batches, writes in the old shape while it is down,
    /// then runs it again: it resumes, every row gets its values, none is lost.
    @Test func crashMidBackfillResumes() throws {
        let teal = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("teal")
        try #require(FileManager.default.isExecutableFile(atPath: teal.path), "build the teal executable first (\(teal.path))")
        let s = try Scratch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")
        try s.exec("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
            INSERT INTO users (name) SELECT 'First' || i || ' Last' || i FROM n
            """)
        let dir = s.dir.appendingPathComponent("schema")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try """
            operations:
              - add_column:
                  table: users
                  column: {name: first_name, type: text}
                  up: "substr(name, 1, instr(name, ' ') - 1)"
              - add_column:
                  table: users
                  column: {name: last_name, type: text}
                  up: "substr(name, instr(name, ' ') + 1)"
              - drop_column:
                  table: users
                  column: name
                  down: "first_name || ' ' || last_name"
            """.write(to: dir.appendingPathComponent("0002_split_name.yaml"), atomically: true, encoding: .utf8)
        func run(_ args: [String], crashAfter: Int? = nil) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = teal
            p.arguments = ["schema"] + args + ["--database", "sqlite://\(s.path)", "--dir", dir.path, "--batch-size", "100"]
            var env = ProcessInfo.processInfo.environment
            env["TEAL_SCHEMA_CRASH_AFTER_BATCH"] = crashAfter.map(String.init)
            p.environment = env
            let err = Pipe()
            p.standardError = err
            p.standardOutput = Pipe()
            try p.run()
            let output = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, output)
        }
        let (crashed, _) = try run(["start"], crashAfter: 3)
        #expect(crashed == 86)
        let engine = try s.engine()
        #expect(try engine.status().inFlight?.state == .backfilling)
        #expect(try s.int("SELECT done FROM _teal_backfill") == 300)
        #expect(try s.int("SELECT count(*) FROM users WHERE first_name IS NOT NULL") == 300)
        #expect(throws: SchemaError.self) { try engine.complete("0002_split_name") }

        try s.exec("INSERT INTO users (name) VALUES ('During Crash')")
        try s.exec("INSERT INTO users (first_name, last_name) VALUES ('New', 'Shape')")

        let (resumed, log) = try run(["start"])
        #expect(resumed == 0, "\(log)")
        #expect(try engine.status().inFlight?.state == .started)
        #expect(try s.int("SELECT count(*) FROM users") == 2002)
        #expect(try s.int("SELECT count(*) FROM users WHERE first_name IS NULL OR last_name IS NULL OR name IS NULL") == 0)
        #expect(try s.int("SELECT count(*) FROM users WHERE name IS NOT first_name || ' ' || last_name") == 0)
        #expect(try s.value("SELECT name FROM users WHERE first_name = 'New'") == "New Shape")

        let (completed, completeLog) = try run(["complete"])
        #expect(completed == 0, "\(completeLog)")
        #expect(try s.columns("users") == ["id", "first_name", "last_name"])
        #expect(try s.int("SELECT count(*) FROM users") == 2002)
        let (nothing, _) = try run(["rollback"])
        #expect(nothing == 1)
    }
}

final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [(Int, Int)] = []
    func add(_ done: Int, _ total: Int) { lock.withLock { list.append((done, total)) } }
    var values: [(Int, Int)] { lock.withLock { list } }
}
