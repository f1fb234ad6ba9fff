import Foundation
import Logging
import Testing
import TestSupport
@testable import PostgresSchema
@testable import Schema

/// The backfill runner on its own, on a session of the test's: the settings it runs under and gives back, where
/// an interrupted run leaves its cursor, and tables with a composite key or none.
@Suite("PostgreSQL: backfill batches", .serialized)
struct BackfillRunnerTests {
    /// What every filled row must hold: `b` from `a`, and in `c` the settings the batch ran under.
    static let assignments = [Assignment(target: "b", expression: "upper(a)", operation: 0),
                              Assignment(target: "c", expression: "current_setting('\(ShapeSetting.name)') || ' ' || current_setting('lock_timeout') || ' ' || current_setting('statement_timeout')",
                                         operation: 0)]
    /// `c` as the engine's default options give it (lock timeout 5 × 20 ms, statement timeout 60 s).
    static let underBackfill = "backfill 100ms 1min"
    /// The session's own settings before the backfill, which it must have again after.
    static let before = ["other", "7s", "3min"]

    struct Fixture {
        let scratch: PGScratch
        let session: PostgresSession
        let logs: LogCapture
        var logger: Logger { Logger(label: "teal.test") { _ in logs } }

        init(table: String, key: String?, rows: Int) async throws {
            scratch = try PGScratch()
            try scratch.sql("""
                CREATE TABLE public.\(table) (id int NOT NULL, part text NOT NULL, a text, b text, c text\(key.map { ", PRIMARY KEY (\($0))" } ?? ""));
                INSERT INTO public.\(table) (id, part, a) SELECT g, 'p' || (g % 3), 'v' || g FROM generate_series(1, \(rows)) g
                """)
            logs = LogCapture()
            session = try await PostgresSession.open(scratch.engine.settings, logger: Logger(label: "teal.test"))
            try await scratch.engine.ensureStateTables(session)
            try await session.exec("SET lock_timeout = '7s'")
            try await session.exec("SET statement_timeout = '3min'")
            try await session.exec("SELECT set_config('\(ShapeSetting.name)', 'other', false)")
        }

        func runner(_ table: String, batchSize: Int) async throws -> BackfillRunner {
            let t = try #require(try await Catalog.read(session, schema: "public").table(table))
            return BackfillRunner(session: session, schema: "public", migration: "0002_fill", table: t, assignments: BackfillRunnerTests.assignments,
                                  options: PostgresSchemaOptions(batchSize: batchSize), logger: logger)
        }

        func settings() async throws -> [String?] {
            try #require(try await session.rows("SELECT \(ShapeSetting.current), current_setting('lock_timeout'), current_setting('statement_timeout')").first)
        }

        /// cursor, done, finished, bound of the table's row in teal.backfill.
        func state(_ table: String) throws -> [String] {
            try scratch.rows("SELECT coalesce(array_to_string(cursor, ','), '-'), done, finished, array_to_string(bound, ',') FROM teal.backfill WHERE table_name = '\(table)'")
                .first.map { $0.split(separator: "|").map(String.init) } ?? []
        }
    }

    @Test("the batches run under the backfill's settings and the session has its own again after; every row is filled up to the bound")
    func settingsComeBack() async throws {
        guard postgresAvailable() else { return }
        let f = try await Fixture(table: "items", key: "id", rows: 5000)
        try await f.runner("items", batchSize: 500).run(progress: nil, shouldStop: nil)
        #expect(try await f.settings() == Self.before)
        #expect(try f.scratch.rows("SELECT count(*) FROM items WHERE b IS DISTINCT FROM upper(a) OR c IS DISTINCT FROM '\(Self.underBackfill)'") == ["0"])
        #expect(try f.state("items") == ["5000", "5000", "t", "5000"], "the cursor ends at the bound")
        #expect(f.logs.count("backfill batch") > 1, "more than one batch")
        await f.session.close()
    }

    @Test("an interrupted backfill gives the settings back, its cursor is where its last batch ended, and it resumes to every row right")
    func interruptedAndResumed() async throws {
        guard postgresAvailable() else { return }
        let f = try await Fixture(table: "items", key: "id", rows: 3000)
        let asked = Counter()
        await #expect(throws: SchemaError.self) {
            try await f.runner("items", batchSize: 200).run(progress: nil, shouldStop: { asked.bump() > 4 })
        }
        #expect(try await f.settings() == Self.before)
        let state = try f.state("items")
        let cursor = try #require(Int(state.first ?? ""))
        #expect(cursor > 0 && cursor < 3000 && state[2] == "f", "stopped half-way: \(state)")
        // The saved cursor and the rows filled committed together: exactly the rows up to the cursor are filled.
        #expect(try f.scratch.rows("SELECT count(*) FILTER (WHERE b IS NOT NULL), coalesce(max(id) FILTER (WHERE b IS NOT NULL), 0) FROM items")
                == ["\(cursor)|\(cursor)"])
        #expect(state[1] == "\(cursor)", "done counts the rows filled")
        // Writers meanwhile: rows ahead of the cursor deleted, rows past the bound added (the triggers' rows).
        try f.scratch.sql("DELETE FROM items WHERE id BETWEEN \(cursor + 1) AND \(cursor + 50); INSERT INTO items (id, part, a) VALUES (3001, 'x', 'late')")
        try await f.runner("items", batchSize: 200).run(progress: nil, shouldStop: nil)
        #expect(try await f.settings() == Self.before)
        #expect(try f.scratch.rows("SELECT count(*) FROM items WHERE id <= 3000 AND (b IS DISTINCT FROM upper(a) OR c IS DISTINCT FROM '\(Self.underBackfill)')") == ["0"])
        #expect(try f.scratch.rows("SELECT count(*) FROM items WHERE id <= 3000") == ["2950"])
        #expect(try f.scratch.rows("SELECT coalesce(b, '-') FROM items WHERE id = 3001") == ["-"], "a row past the bound is not the backfill's")
        #expect(try f.state("items") == ["3000", "2950", "t", "3000"])
        await f.session.close()
    }

    @Test("a batch that waits on a writer's row lock gives way, retries smaller, and the settings come back after")
    func lockWaitBackOff() async throws {
        guard postgresAvailable() else { return }
        let f = try await Fixture(table: "items", key: "id", rows: 4000)
        let holder = try await PostgresSession.open(f.scratch.engine.settings, logger: Logger(label: "teal.test"))
        try await holder.exec("BEGIN")
        try await holder.exec("UPDATE public.items SET a = a WHERE id = 2")
        let runner = try await f.runner("items", batchSize: 1000)
        async let filled: Void = runner.run(progress: nil, shouldStop: nil)
        try await Task.sleep(nanoseconds: 800_000_000)
        try await holder.exec("COMMIT")
        try await filled
        await holder.close()
        #expect(f.logs.count("backfill batch gave way") >= 1, "the batch over the held row timed out and gave way")
        #expect(try await f.settings() == Self.before)
        #expect(try f.scratch.rows("SELECT count(*) FROM items WHERE b IS DISTINCT FROM upper(a) OR c IS DISTINCT FROM '\(Self.underBackfill)'") == ["0"])
        #expect(try f.state("items") == ["4000", "4000", "t", "4000"])
        await f.session.close()
    }

    @Test("a composite key: batches take key ranges in the key's order, interrupted and resumed, every row once")
    func compositeKey() async throws {
        guard postgresAvailable() else { return }
        let f = try await Fixture(table: "pairs", key: "part, id", rows: 2000)
        let asked = Counter()
        await #expect(throws: SchemaError.self) {
            try await f.runner("pairs", batchSize: 150).run(progress: nil, shouldStop: { asked.bump() > 3 })
        }
        let cursor = try f.state("pairs")[0].split(separator: ",").map(String.init)
        #expect(cursor.count == 2)
        let (part, id) = (cursor[0], cursor.count == 2 ? cursor[1] : "0")
        #expect(try f.scratch.rows("SELECT count(*) FROM pairs WHERE (b IS NOT NULL) <> ((part, id) <= ('\(part)', \(id)))") == ["0"],
                "filled exactly up to the cursor \(cursor)")
        try await f.runner("pairs", batchSize: 150).run(progress: nil, shouldStop: nil)
        #expect(try await f.settings() == Self.before)
        #expect(try f.scratch.rows("SELECT count(*) FROM pairs WHERE b IS DISTINCT FROM upper(a) OR c IS DISTINCT FROM '\(Self.underBackfill)'") == ["0"])
        #expect(try f.state("pairs") == ["p2,2000", "2000", "t", "p2,2000"])
        await f.session.close()
    }

    @Test("a table without a key is filled in windows of heap pages over many batches, every row, empty pages passed quickly")
    func noKey() async throws {
        guard postgresAvailable() else { return }
        let f = try await Fixture(table: "loose", key: nil, rows: 10000)
        // A stretch of empty pages in the middle (rows deleted, the space not yet reused): windows pass over it.
        try f.scratch.sql("DELETE FROM loose WHERE id BETWEEN 3000 AND 7000")
        let pagesWithRows = try #require(Int(try f.scratch.sql("SELECT count(DISTINCT (ctid::text::point)[0]) FROM loose")))
        let emptyPages = try #require(Int(try f.scratch.sql("SELECT max((ctid::text::point)[0])::int + 1 FROM loose"))) - pagesWithRows
        #expect(pagesWithRows > 20 && emptyPages > 15, "\(pagesWithRows) pages with rows, \(emptyPages) empty")
        let asked = Counter()
        await #expect(throws: SchemaError.self) {
            try await f.runner("loose", batchSize: 100).run(progress: nil, shouldStop: { asked.bump() > 5 })
        }
        #expect(try await f.settings() == Self.before)
        let done = try #require(Int(try f.state("loose")[1]))
        #expect(done > 0 && done < 6000, "stopped half-way: \(done)")
        // A row's new version can land further on in its own page and be visited again, so done may count
        // some rows twice; it never counts fewer than were filled.
        let filled = try #require(Int(try f.scratch.sql("SELECT count(*) FROM loose WHERE b IS NOT NULL")))
        #expect(filled > 0 && filled <= done, "\(filled) rows filled, \(done) done")
        try await f.runner("loose", batchSize: 100).run(progress: nil, shouldStop: nil)
        #expect(try await f.settings() == Self.before)
        #expect(try f.scratch.rows("SELECT count(*) FROM loose WHERE b IS DISTINCT FROM upper(a) OR c IS DISTINCT FROM '\(Self.underBackfill)'") == ["0"])
        #expect(try f.state("loose")[2] == "t")
        // At 100 rows a batch each window is about one page (a page holds ~185 of these rows; new row versions
        // move some rows meanwhile), so the pages with rows take many batches; the empty stretch is passed in
        // windows that double.
        let batches = f.logs.count("backfill batch")
        #expect(batches > pagesWithRows / 2, "\(batches) batches for \(pagesWithRows) pages with rows")
        #expect(batches < pagesWithRows + emptyPages / 2, "\(batches) batches: the \(emptyPages) empty pages are passed in growing windows")
        #expect(try f.scratch.rows("SELECT count(*) FROM loose") == ["5999"])
        await f.session.close()
    }
}

/// Keeps the messages logged through it, for a test to count.
final class LogCapture: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lock.lock(); messages.append("\(event.message)"); lock.unlock()
    }

    func count(_ message: String) -> Int { lock.lock(); defer { lock.unlock() }; return messages.filter { $0 == message }.count }
}
