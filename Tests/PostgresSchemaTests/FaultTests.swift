import Foundation
import Manifest
import Testing
import TestSupport
@testable import PostgresSchema
@testable import Schema

@Suite("PostgreSQL: bad input and faults", .serialized)
struct PGFaultTests {
    @Test("a wrong password or an unreachable server is transient, names the host, never shows the password")
    func unreachable() async throws {
        guard postgresAvailable() else { return }
        let cluster = try PostgresCluster.get()
        let file = NSTemporaryDirectory() + "pgpass-wrong-\(UUID().uuidString)"
        try "*:*:*:*:not-the-password\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let wrong = PostgresSchemaEngine(settings: try PostgresSettings(url: cluster.url("postgres"), environment: ["PGPASSFILE": file]))
        do {
            _ = try await wrong.status()
            Issue.record("a wrong password was accepted")
        } catch let e as SchemaError {
            #expect(e.isTransient)
            #expect(e.message.contains("127.0.0.1:\(cluster.port)"), "\(e.message)")
            #expect(e.message.contains("password authentication failed"), "\(e.message)")
            #expect(!e.message.contains("not-the-password"))
        }
        let closed = freeLoopbackPort()
        let nowhere = PostgresSchemaEngine(settings: try PostgresSettings(url: "postgres://teal@127.0.0.1:\(closed)/x?sslmode=disable", environment: [:]))
        do {
            _ = try await nowhere.status()
            Issue.record("a closed port answered")
        } catch let e as SchemaError {
            #expect(e.isTransient)
            #expect(e.message.contains("127.0.0.1:\(closed)"), "\(e.message)")
        }
    }

    @Test("a migration whose SQL fails is undone completely and the failure names the operation and the cause")
    func failingSQL() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch()
        try await s.engine.start(try pgMigration("0001_create_users", createUsers))
        try await s.engine.complete("0001_create_users")
        try s.sql("INSERT INTO users (name) VALUES ('Ada Lovelace')", as: "0001_create_users")
        let before = try PGHarness.shape(s)
        let bad = try pgMigration("0002_bad", """
            operations:
              - add_column:
                  table: users
                  column: {name: first_name, type: text, nullable: true}
                  up: "split_part(name, ' ', 1)"
              - sql:
                  up: "ALTER TABLE users ADD COLUMN oops no_such_type"
            """)
        do {
            try await s.engine.start(bad)
            Issue.record("a failing migration started")
        } catch let e as SchemaError {
            #expect(!e.isTransient)
            #expect(e.operationIndex == 1 && e.operationKind == "sql", "\(e)")
            #expect(e.message.contains("no_such_type"), "\(e.message)")
            #expect(e.statement?.contains("no_such_type") == true)
        }
        #expect(try PGHarness.shape(s) == before, "nothing of the start is left")
        #expect(try PGHarness.machinery(s).isEmpty)
        #expect(try await s.engine.status().migrations.last?.state == .rolledBack)
        #expect(try s.rows("SELECT name FROM users", as: "0001_create_users") == ["Ada Lovelace"], "the old shape still serves")
    }

    @Test("a step of teal's that fails (its statements sent as one block) names the statement that failed")
    func failingStepNamesItsStatement() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch()
        try await s.engine.start(try pgMigration("0001_create_users", createUsers))
        try await s.engine.complete("0001_create_users")
        let before = try PGHarness.shape(s)
        let bad = try pgMigration("0002_bad_type", """
            operations:
              - create_table:
                  name: notes
                  columns:
                    - {name: id, type: serial, pk: true}
                    - {name: body, type: no_such_type}
            """)
        do {
            try await s.engine.start(bad)
            Issue.record("a table of an unknown type was created")
        } catch let e as SchemaError {
            #expect(!e.isTransient)
            #expect(e.operationIndex == 0 && e.operationKind == "create_table", "\(e)")
            #expect(e.message.contains("no_such_type"), "\(e.message)")
            let statement = try #require(e.statement)
            #expect(statement.contains("CREATE TABLE") && statement.contains("no_such_type"), "\(statement)")
            #expect(!statement.contains("teal_block") && !statement.contains("lock_timeout"), "the failing statement alone: \(statement)")
        }
        #expect(try PGHarness.shape(s) == before, "nothing of the start is left")
        #expect(try await s.engine.status().migrations.last?.state == .rolledBack)
    }

    @Test("a table locked by a long transaction: lock timeout, retried, then a transient failure naming the holder")
    func lockedTable() async throws {
        guard postgresAvailable() else { return }
        let options = PostgresSchemaOptions(lockTimeout: 0.2, lockAttempts: 2)
        let s = try PGScratch(options: options)
        try await s.engine.start(try pgMigration("0001_create_users", createUsers))
        try await s.engine.complete("0001_create_users")
        let holder = try Self.holdUsers(s)
        defer { holder.stop() }
        do {
            try await s.engine.start(try pgMigration("0002_split_name", splitName))
            Issue.record("the start went through a locked table")
        } catch let e as SchemaError {
            #expect(e.isTransient, "\(e)")
            #expect(e.message.contains("lock timeout"), "\(e.message)")
            #expect(e.message.contains("after 2 attempts, each waiting lock_timeout 200ms"), "\(e.message)")
            #expect(e.message.contains("is held by pid"), "\(e.message)")
            #expect(e.message.contains("SELECT pg_sleep(?) WHERE '?' <> '?'"), "the blocking query is named: \(e.message)")
            #expect(!e.message.contains("hunter2"), "its constants are not: \(e.message)")
        }
        Self.release(holder, s)
        // Once the table is free the same start goes through (it resumes what it began).
        try await s.engine.start(try pgMigration("0002_split_name", splitName))
        #expect(try await s.engine.status().inFlight?.state == .started)
    }

    /// A transaction of another session that holds a lock on `users` (open when this returns) for 30 s.
    static func holdUsers(_ s: PGScratch) throws -> BackgroundSession {
        let holder = try s.cluster.background(s.database, "BEGIN; SELECT count(*) FROM public.users; SELECT pg_sleep(30) WHERE 'hunter2' <> ''; COMMIT;")
        var open = false
        for _ in 0..<100 where !open {
            open = (try? s.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND state <> 'idle' AND pid <> pg_backend_pid()")) == "1"
            if !open { usleep(50_000) }
        }
        #expect(open, "the holder's transaction is open before the DDL is tried")
        return holder
    }

    static func release(_ holder: BackgroundSession, _ s: PGScratch) {
        holder.stop()
        _ = try? s.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")
    }

    @Test("environment.yaml's lock_timeout is how long a DDL waits for a locked table")
    func configuredLockTimeout() async throws {
        try await Self.givesUpAfterTheLockTimeout(DatabaseOptions(lockTimeout: .milliseconds(200)), seconds: 0.2, shown: "200ms")
    }

    @Test("without lock_timeout in environment.yaml a DDL waits 1 s for a locked table")
    func defaultLockTimeout() async throws {
        try await Self.givesUpAfterTheLockTimeout(DatabaseOptions(), seconds: 1, shown: "1s")
    }

    /// One attempt of a start whose first DDL meets a locked table fails after `seconds`, saying so.
    static func givesUpAfterTheLockTimeout(_ database: DatabaseOptions, seconds: Double, shown: String) async throws {
        guard postgresAvailable() else { return }
        var options = PostgresSchemaOptions(database)
        options.lockAttempts = 1
        let s = try PGScratch(options: options)
        try await s.engine.start(try pgMigration("0001_create_users", createUsers))
        try await s.engine.complete("0001_create_users")
        let holder = try Self.holdUsers(s)
        defer { holder.stop() }
        let began = ContinuousClock.now
        do {
            try await s.engine.start(try pgMigration("0002_split_name", splitName))
            Issue.record("the start went through a locked table")
        } catch let e as SchemaError {
            let elapsed = began.duration(to: .now)
            #expect(e.sqlState == "55P03" && e.isTransient, "\(e)")
            #expect(e.message.contains("each waiting lock_timeout \(shown)"), "\(e.message)")
            #expect(elapsed >= .milliseconds(Int64(seconds * 1000)), "gave up after \(elapsed), before the lock timeout")
            // Under the default of 1 s when 200ms is set: the setting, not the default, is what the DDL waited.
            #expect(elapsed < .milliseconds(Int64(seconds * 1000) + 800), "waited \(elapsed), far longer than the lock timeout")
        }
        Self.release(holder, s)
    }

    @Test("a second runner on the same database waits, then is told who holds the migration lock")
    func secondRunner() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch(options: PostgresSchemaOptions(runnerWait: 1))
        let holder = try s.cluster.background(s.database, "SELECT pg_advisory_lock(hashtext('teal:' || current_database() || ':' || 'public')); SELECT pg_sleep(30);")
        defer { holder.stop() }
        var held = false
        for _ in 0..<100 where !held {
            held = (try? s.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")) == "1"
            if !held { usleep(50_000) }
        }
        #expect(held)
        do {
            try await s.engine.start(try pgMigration("0001_create_users", createUsers))
            Issue.record("two runners ran at once")
        } catch let e as SchemaError {
            #expect(e.isTransient)
            #expect(e.message.contains("another runner holds teal's migration lock"), "\(e.message)")
            #expect(e.message.contains("pid "), "\(e.message)")
        }
        holder.stop()
        try s.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")
        try await s.engine.start(try pgMigration("0001_create_users", createUsers))
        #expect(try await s.engine.status().inFlight?.name == "0001_create_users")
    }

    /// Opt-in (`TEAL_PG_RESTART_TEST=1`): about one run in three, an await on the connection the server ended
    /// never returns, and the test hangs instead of failing; until that is found it stays out of the default run.
    @Test("the database restarted mid-backfill: the start fails transient and the next one converges",
          .enabled(if: ProcessInfo.processInfo.environment["TEAL_PG_RESTART_TEST"] == "1", "set TEAL_PG_RESTART_TEST=1: it restarts the shared test cluster (18 of 18 runs passed once awaits on a closed connection were guarded, 6 of 7 before)"),
          .timeLimit(.minutes(3)))
    func restartMidBackfill() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch(options: PostgresSchemaOptions(batchSize: 2000, batchDuration: 0.01))
        try await s.engine.start(try pgMigration("0001_create_users", createUsers))
        try await s.engine.complete("0001_create_users")
        try s.sql("INSERT INTO public.users (name) SELECT 'P' || g || ' Q' || g FROM generate_series(1, 150000) g")
        let cluster = s.cluster
        let restarted = Task.detached {
            try await Task.sleep(nanoseconds: 300_000_000)
            try cluster.restart()
        }
        var failedOnce = false
        do {
            try await s.engine.start(try pgMigration("0002_split_name", splitName))
        } catch let e as SchemaError {
            #expect(e.isTransient, "a lost connection is transient: \(e)")
            failedOnce = true
        }
        try await restarted.value
        for _ in 0..<3 {
            do { try await s.engine.start(try pgMigration("0002_split_name", splitName)); break }
            catch let e as SchemaError where e.isTransient { try await Task.sleep(nanoseconds: 500_000_000) }
        }
        #expect(try await s.engine.status().inFlight?.state == .started)
        #expect(try s.rows("SELECT count(*) FROM users WHERE first_name IS NULL OR last_name IS NULL", as: "0002_split_name") == ["0"])
        if !failedOnce { Issue.record("the backfill finished before the restart; nothing was tested") }
    }
}
