import Foundation
import Manifest
import Testing
import TestSupport
@testable import PostgresSchema
@testable import Schema

let createUsers = PostgresFixtures.createUsers
let splitName = PostgresFixtures.splitName

@Suite("PostgreSQL: the seed story at the schema level", .serialized)
struct SeedStoryTests {
    @Test("both shapes live at once, rollback keeps every row, restart and complete")
    func story() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch(batchSize: 7)
        let m1 = try pgMigration("0001_create_users", createUsers)
        let m2 = try pgMigration("0002_split_name", splitName)

        try await s.engine.start(m1)
        try await s.engine.complete(m1.name)
        for i in 0..<50 { try s.sql("INSERT INTO users (name) VALUES ('Ada\(i) Lovelace')", as: m1.name) }
        #expect(try s.rows("SELECT count(*) FROM users", as: m1.name) == ["50"])

        let seen = Counter()
        try await s.engine.start(m2, progress: { done, total in seen.set(done, total) })
        #expect(try await s.engine.status().inFlight?.state == .started)
        #expect(seen.last == [50, 50], "progress reports every backfilled row: \(seen.last)")
        // Existing rows were backfilled.
        #expect(try s.rows("SELECT first_name || '|' || last_name FROM users WHERE id = 1", as: m2.name) == ["Ada0|Lovelace"])
        // The new shape has no `name`; the old one has no `first_name`.
        #expect(throws: (any Error).self) { try s.sql("SELECT name FROM users", as: m2.name) }
        #expect(throws: (any Error).self) { try s.sql("SELECT first_name FROM users", as: m1.name) }
        // An old-shape write is carried to the new shape, and the other way round.
        try s.sql("INSERT INTO users (name) VALUES ('Grace Hopper')", as: m1.name)
        #expect(try s.rows("SELECT first_name || '|' || last_name FROM users WHERE id = 51", as: m2.name) == ["Grace|Hopper"])
        try s.sql("INSERT INTO users (first_name, last_name) VALUES ('Alan', 'Turing')", as: m2.name)
        #expect(try s.rows("SELECT name FROM users WHERE id = 52", as: m1.name) == ["Alan Turing"])
        try s.sql("UPDATE users SET last_name = 'Kay' WHERE id = 52", as: m2.name)
        #expect(try s.rows("SELECT name FROM users WHERE id = 52", as: m1.name) == ["Alan Kay"])
        try s.sql("UPDATE users SET name = 'Barbara Liskov' WHERE id = 1", as: m1.name)
        #expect(try s.rows("SELECT first_name || '|' || last_name FROM users WHERE id = 1", as: m2.name) == ["Barbara|Liskov"])
        // RETURNING through the view gives the real id.
        #expect(try s.rows("INSERT INTO users (first_name, last_name) VALUES ('Edsger', 'Dijkstra') RETURNING id", as: m2.name) == ["53"])

        // Rollback: every row is readable by the old shape, the new version schema is gone.
        try await s.engine.rollback(m2.name)
        #expect(try s.rows("SELECT count(*) FROM users", as: m1.name) == ["53"])
        #expect(try s.rows("SELECT name FROM users WHERE id = 53", as: m1.name) == ["Edsger Dijkstra"])
        #expect(try s.rows("SELECT count(*) FROM pg_namespace WHERE nspname = 'public_0002_split_name'") == ["0"])
        #expect(try s.rows("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '\\_teal\\_%'") == ["0"])
        try s.sql("INSERT INTO users (name) VALUES ('Katherine Johnson')", as: m1.name)

        // Start again, then complete: only the new shape remains, and it has every row.
        try await s.engine.start(m2)
        #expect(try s.rows("SELECT first_name FROM users WHERE id = 54", as: m2.name) == ["Katherine"])
        try await s.engine.complete(m2.name)
        #expect(try await s.engine.status().lastCompleted?.name == m2.name)
        #expect(try s.rows("SELECT count(*) FROM users", as: m2.name) == ["54"])
        #expect(try s.rows("SELECT count(*) FROM pg_namespace WHERE nspname = 'public_0001_create_users'") == ["0"], "the old version schema is dropped")
        #expect(try s.rows("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '\\_teal\\_%'") == ["0"], "no trigger left")
        // The dropped column is put aside, not dropped, with its values.
        let aside = try s.rows("SELECT attname FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname LIKE '\\_teal\\_dropped\\_%' AND NOT attisdropped")
        #expect(aside.count == 1, "the dropped column is renamed aside: \(aside)")
        try s.sql("INSERT INTO users (first_name, last_name) VALUES ('Frances', 'Allen')", as: m2.name)
        #expect(try s.rows("SELECT count(*) FROM users", as: m2.name) == ["55"])
    }

    @Test("an interrupted backfill resumes from its saved cursor; starting twice does nothing")
    func resume() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch(batchSize: 10)
        let m1 = try pgMigration("0001_create_users", createUsers)
        let m2 = try pgMigration("0002_split_name", splitName)
        try await s.engine.start(m1)
        try await s.engine.complete(m1.name)
        try s.sql("INSERT INTO public.users (name) SELECT 'P' || g || ' Q' || g FROM generate_series(1, 1000) g")
        let asked = Counter()
        await #expect(throws: SchemaError.self) {
            try await s.engine.start(m2, shouldStop: { asked.bump() > 3 })
        }
        #expect(try await s.engine.status().inFlight?.state == .backfilling)
        let done = Int(try s.sql("SELECT done FROM teal.backfill")) ?? -1
        #expect(done > 0 && done < 1000, "the cursor was saved batch by batch: \(done)")
        try await s.engine.start(m2)
        #expect(try await s.engine.status().inFlight?.state == .started)
        #expect(try s.rows("SELECT count(*) FROM users WHERE last_name IS NULL", as: m2.name) == ["0"])
        #expect(try s.rows("SELECT first_name || last_name FROM users WHERE id = 1000", as: m2.name) == ["P1000Q1000"])
        try await s.engine.start(m2)
        #expect(try await s.engine.status().inFlight?.state == .started)
    }
}

@Suite("PostgreSQL: old-shape updates while the backfill runs without UPDATE triggers", .serialized)
struct BackfillCatchUpTests {
    /// `users` of the seed with 1,000 rows, and a start of `yaml` stopped after three batches of ten rows.
    static func stoppedAfterThreeBatches(_ yaml: String, name: String = "0002_split_name") async throws -> (PGScratch, Migration, Migration) {
        let s = try PGScratch(batchSize: 10)
        let m1 = try pgMigration("0001_create_users", createUsers)
        let m2 = try pgMigration(name, yaml)
        try await s.engine.start(m1)
        try await s.engine.complete(m1.name)
        try s.sql("INSERT INTO public.users (name) SELECT 'P' || g || ' Q' || g FROM generate_series(1, 1000) g")
        let asked = Counter()
        await #expect(throws: SchemaError.self) { try await s.engine.start(m2, shouldStop: { asked.bump() > 3 }) }
        return (s, m1, m2)
    }
    static let fill = "split_part(name, ' ', 1) || '|' || CASE WHEN strpos(name, ' ') > 0 THEN substr(name, strpos(name, ' ') + 1) ELSE '' END"

    @Test("updates of filled and unfilled rows, in a savepoint and by an upsert, between an interruption and the resume, reach the new shape")
    func updatesBetweenBatches() async throws {
        guard postgresAvailable() else { return }
        let (s, m1, m2) = try await Self.stoppedAfterThreeBatches(splitName)
        let tag = PlanBuilder.tag(m2.name)
        // While the backfill runs: the INSERT triggers and the statement trigger, no row UPDATE trigger.
        #expect(try s.rows("SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.users'::regclass ORDER BY 1") ==
                ["_teal_\(tag)_down_insert", "_teal_\(tag)_touched", "_teal_\(tag)_up_insert"])
        #expect(try s.rows("SELECT count(*) FROM pg_namespace WHERE nspname = 'public_0002_split_name'") == ["0"], "no version schema before start returns")
        #expect(try s.rows("SELECT \(Self.fill) FROM users WHERE id = 1") == ["P1|Q1"], "row 1 was filled before the stop")
        try s.sql("UPDATE users SET name = 'Ada Lovelace' WHERE id = 1", as: m1.name)
        try s.sql("UPDATE users SET name = 'Grace Hopper' WHERE id = 900", as: m1.name)
        try s.sql("BEGIN; SAVEPOINT a; UPDATE public.users SET name = 'Sub Transaction' WHERE id = 2; RELEASE a; COMMIT;")
        try s.sql("INSERT INTO public.users (id, name) VALUES (3, 'x') ON CONFLICT (id) DO UPDATE SET name = 'Up Sert'")
        try s.sql("INSERT INTO public.users (name) VALUES ('New Row')")
        try await s.engine.start(m2)
        #expect(try await s.engine.status().inFlight?.state == .started)
        let after = try s.rows("SELECT first_name || '|' || last_name FROM users WHERE id IN (1, 2, 3, 900, 1001) ORDER BY id", as: m2.name)
        #expect(after == ["Ada|Lovelace", "Sub|Transaction", "Up|Sert", "Grace|Hopper", "New|Row"])
        #expect(try s.rows("SELECT count(*) FROM users WHERE first_name || '|' || last_name IS DISTINCT FROM \(Self.fill)") == ["0"])
        #expect(try s.rows("SELECT count(*) FROM teal.backfill WHERE migration = '0002_split_name (catch-up)'") == ["1"], "the catch-up ran")
        // The full set is there, the mark and the batches' ids are gone.
        #expect(try s.rows("SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.users'::regclass ORDER BY 1") ==
                ["_teal_\(tag)_down", "_teal_\(tag)_down_insert", "_teal_\(tag)_up", "_teal_\(tag)_up_insert"])
        #expect(try s.rows("SELECT count(*) FROM pg_class WHERE relname LIKE '%touched%'") == ["0"])
        #expect(try s.rows("SELECT count(*) FROM pg_proc WHERE proname LIKE '%touched%'") == ["0"])
        #expect(try s.rows("SELECT count(*) FROM teal.backfill_xids") == ["0"])
        try await s.engine.complete(m2.name)
        #expect(try s.rows("SELECT count(*) FROM teal.backfill") == ["0"])
    }

    @Test("a table whose filled column has an index keeps its UPDATE triggers during the backfill: no stale value fails another write")
    func constrainedTargetKeepsTheTriggers() async throws {
        guard postgresAvailable() else { return }
        let (s, m1, m2) = try await Self.stoppedAfterThreeBatches("""
            operations:
              - add_column:
                  table: users
                  column: {name: handle, type: text, nullable: true, unique: true}
                  up: "lower(name)"
            """, name: "0002_handle")
        let tag = PlanBuilder.tag(m2.name)
        #expect(try s.rows("SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.users'::regclass AND tgname LIKE '%\\_up' ORDER BY 1") == ["_teal_\(tag)_up"])
        // Row 1 is filled; its new name moves its handle at once, so the old name is free for another row.
        try s.sql("UPDATE users SET name = 'Ada Lovelace' WHERE id = 1", as: m1.name)
        try s.sql("INSERT INTO users (name) VALUES ('P1 Q1')", as: m1.name)
        #expect(try s.rows("SELECT count(*) FROM pg_trigger WHERE tgname = '_teal_\(tag)_touched'") == ["0"], "no statement trigger")
        #expect(try s.rows("SELECT count(*) FROM teal.backfill_xids") == ["0"], "no batch ids recorded")
        try await s.engine.start(m2)
        #expect(try s.rows("SELECT handle FROM users WHERE id IN (1, 1001) ORDER BY id", as: m2.name) == ["ada lovelace", "p1 q1"])
    }

    @Test("a partitioned table keeps its UPDATE triggers during the backfill: an update straight to a partition reaches the new shape")
    func partitionedTableKeepsTheTriggers() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch(batchSize: 10)
        let m1 = try pgMigration("0001_events", """
            operations:
              - sql:
                  up: "CREATE TABLE events (id int PRIMARY KEY, name text) PARTITION BY RANGE (id); CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (500); CREATE TABLE events_high PARTITION OF events FOR VALUES FROM (500) TO (100000)"
            """)
        let m2 = try pgMigration("0002_first", """
            operations:
              - add_column:
                  table: events
                  column: {name: first, type: text, nullable: true}
                  up: "split_part(name, ' ', 1)"
            """)
        try await s.engine.start(m1)
        try await s.engine.complete(m1.name)
        try s.sql("INSERT INTO public.events SELECT g, 'P' || g || ' Q' FROM generate_series(1, 1000) g")
        let asked = Counter()
        await #expect(throws: SchemaError.self) { try await s.engine.start(m2, shouldStop: { asked.bump() > 3 }) }
        #expect(try s.rows("SELECT first FROM public.events WHERE id = 1") == ["P1"], "row 1 was filled before the stop")
        try s.sql("UPDATE public.events_low SET name = 'Ada Lovelace' WHERE id = 1")
        try await s.engine.start(m2)
        #expect(try s.rows("SELECT first FROM events WHERE id = 1", as: m2.name) == ["Ada"])
        #expect(try s.rows("SELECT count(*) FROM public.events WHERE first IS DISTINCT FROM split_part(name, ' ', 1)") == ["0"])
    }

    @Test("a rollback while the backfill runs leaves no mark, no batch ids, no cursor")
    func rollbackWhileBackfilling() async throws {
        guard postgresAvailable() else { return }
        let (s, m1, m2) = try await Self.stoppedAfterThreeBatches(splitName)
        try s.sql("UPDATE users SET name = 'Ada Lovelace' WHERE id = 1", as: m1.name)
        #expect(try s.rows("SELECT count(*) FROM teal.backfill_xids") != ["0"], "the batches recorded their ids")
        #expect(try s.rows("SELECT count(*) FROM pg_class WHERE relname LIKE '%touched%'") == ["1"])
        try await s.engine.rollback(m2.name)
        #expect(try s.rows("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '\\_teal\\_%'") == ["0"])
        #expect(try s.rows("SELECT count(*) FROM pg_class WHERE relname LIKE '%touched%'") == ["0"])
        #expect(try s.rows("SELECT count(*) FROM pg_proc WHERE proname LIKE '%touched%'") == ["0"])
        #expect(try s.rows("SELECT count(*) FROM teal.backfill_xids") == ["0"])
        #expect(try s.rows("SELECT count(*) FROM teal.backfill") == ["0"])
        #expect(try s.rows("SELECT name FROM users WHERE id = 1", as: m1.name) == ["Ada Lovelace"])
    }

    @Test("a writer updating rows the whole time the backfill runs, some in savepoints: every row right after start; no catch-up without updates")
    func concurrentWriter() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch(batchSize: 5)
        let m1 = try pgMigration("0001_create_users", createUsers)
        let m2 = try pgMigration("0002_split_name", splitName)
        try await s.engine.start(m1)
        try await s.engine.complete(m1.name)
        try s.sql("INSERT INTO public.users (name) SELECT 'P' || g || ' Q' || g FROM generate_series(1, 3000) g")
        try s.sql("CREATE TABLE public.writes (during text)")
        // Commits after every update (a DO block at top level may), every third one in a subtransaction, until
        // the migration is started (or 60 s pass); each records the state it saw.
        let writer = Task.detached {
            try s.sql("""
                DO $w$ DECLARE i int := 0; deadline timestamptz := clock_timestamp() + interval '60 s'; BEGIN
                  WHILE clock_timestamp() < deadline AND NOT EXISTS (SELECT 1 FROM teal.migrations WHERE name = '0002_split_name' AND state = 'started') LOOP
                    i := i + 1;
                    IF i % 3 = 0 THEN
                      BEGIN UPDATE public.users SET name = 'S' || i || ' T' || i WHERE id = 1 + (i * 7919) % 3000; EXCEPTION WHEN others THEN RAISE; END;
                    ELSE
                      UPDATE public.users SET name = 'W' || i || ' X' || i WHERE id = 1 + (i * 7919) % 3000;
                    END IF;
                    INSERT INTO public.writes SELECT coalesce((SELECT state FROM teal.migrations WHERE name = '0002_split_name'), 'before');
                    COMMIT;
                  END LOOP;
                END $w$
                """)
        }
        try await Task.sleep(nanoseconds: 200_000_000)
        try await s.engine.start(m2)
        _ = try await writer.value
        let during = Int(try s.sql("SELECT count(*) FROM public.writes WHERE during = 'backfilling'")) ?? 0
        #expect(during > 20, "the writer updated rows while the backfill ran: \(during)")
        #expect(try s.rows("SELECT count(*) FROM public.users WHERE first_name || '|' || last_name IS DISTINCT FROM \(Self.fill)") == ["0"])
        #expect(try s.rows("SELECT count(*) FROM teal.backfill WHERE migration = '0002_split_name (catch-up)'") == ["1"])

        // Without a write in the old shape during the backfill, no catch-up.
        try await s.engine.rollback(m2.name)
        try await s.engine.start(m2)
        #expect(try s.rows("SELECT count(*) FROM teal.backfill WHERE migration = '0002_split_name (catch-up)'") == ["0"])
        #expect(try s.rows("SELECT count(*) FROM public.users WHERE first_name || '|' || last_name IS DISTINCT FROM \(Self.fill)") == ["0"])
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    private var pair: [Int] = []
    func bump() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
    func set(_ a: Int, _ b: Int) { lock.lock(); pair = [a, b]; lock.unlock() }
    var last: [Int] { lock.lock(); defer { lock.unlock() }; return pair }
}
