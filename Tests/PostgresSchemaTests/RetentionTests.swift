import Foundation
import Manifest
import Testing
import TestSupport
@testable import PostgresSchema
@testable import Schema

@Suite("PostgreSQL: what complete put aside is purged after the retention window", .serialized)
struct PGRetentionTests {
    static let setup = "0001_shop"
    static let first = "0002_trim"
    static let second = "0003_trim_more"

    static let setupYAML = """
        operations:
          - create_table:
              name: users
              columns:
                - {name: id, type: integer, pk: true}
                - {name: name, type: text}
                - {name: nick, type: text, nullable: true}
          - create_table:
              name: orders
              columns:
                - {name: id, type: integer, pk: true}
                - {name: note, type: text, nullable: true}
          - create_table:
              name: logs
              columns:
                - {name: id, type: integer, pk: true}
        """
    static let firstYAML = """
        operations:
          - drop_column: {table: users, column: nick}
          - drop_table: {name: logs}
        """
    static let secondYAML = """
        operations:
          - drop_column: {table: orders, column: note}
        """

    /// A database with 0001 and 0002 completed (users.nick and logs aside) and 0003 completed (orders.note aside).
    static func prepared(_ s: PGScratch) async throws {
        try await s.engine.start(try pgMigration(setup, setupYAML))
        try await s.engine.complete(setup)
        try s.sql("INSERT INTO users VALUES (1, 'Ada', 'ada'), (2, 'Grace', NULL); INSERT INTO orders VALUES (10, 'first'); INSERT INTO logs VALUES (7)")
        for (name, yaml) in [(first, firstYAML), (second, secondYAML)] {
            try await s.engine.start(try pgMigration(name, yaml))
            try await s.engine.complete(name)
        }
    }

    static func aside(_ s: PGScratch) throws -> [String] {
        try s.rows("SELECT migration || ' ' || kind || ' ' || holder || '.' || name FROM teal.aside ORDER BY 1")
    }

    static func columns(_ s: PGScratch, _ table: String) throws -> [String] {
        try s.rows("SELECT attname FROM pg_attribute WHERE attrelid = 'public.\(table)'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum")
    }

    static func dropped(_ migration: String, _ column: String) -> String { "_teal_dropped_\(PlanBuilder.tag(migration))_\(column)" }
    static func kept(_ migration: String) -> String { "teal_kept_\(PlanBuilder.tag(migration))" }

    @Test("older than the window goes, younger stays, the app's tables are untouched, and a second purge does nothing")
    func window() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch(options: PostgresSchemaOptions(retention: 3600))
        try await Self.prepared(s)
        #expect(try Self.aside(s) == [
            "\(Self.first) column users.\(Self.dropped(Self.first, "nick"))",
            "\(Self.first) table \(Self.kept(Self.first)).logs",
            "\(Self.second) column orders.\(Self.dropped(Self.second, "note"))",
        ])
        // Nothing is an hour old yet: nothing goes.
        #expect(try await s.engine.purge().isEmpty)
        #expect(try await s.engine.purge(now: Date().addingTimeInterval(1800)).isEmpty)
        #expect(try Self.aside(s).count == 3)

        // 0002's objects were put aside two hours ago.
        try s.sql("UPDATE teal.aside SET put_aside_at = now() - interval '2 hours' WHERE migration = '\(Self.first)'")
        let purged = try await s.engine.purge()
        #expect(Set(purged.map(\.name)) == [Self.dropped(Self.first, "nick"), "logs"])
        #expect(try Self.columns(s, "users") == ["id", "name"], "the dropped column is gone, the others stay")
        #expect(try Self.columns(s, "orders") == ["id", Self.dropped(Self.second, "note")], "the younger one stays")
        #expect(try s.rows("SELECT nspname FROM pg_namespace WHERE nspname = '\(Self.kept(Self.first))'").isEmpty, "the empty kept schema went too")
        #expect(try Self.aside(s) == ["\(Self.second) column orders.\(Self.dropped(Self.second, "note"))"])
        #expect(try s.rows("SELECT id || ':' || name FROM users ORDER BY id") == ["1:Ada", "2:Grace"])
        #expect(try s.rows("SELECT id FROM orders", as: Self.second) == ["10"])
        #expect(try s.rows("SELECT id || ':' || name FROM users ORDER BY id", as: Self.second) == ["1:Ada", "2:Grace"], "the color's shape still serves")

        // Twice is harmless.
        #expect(try await s.engine.purge().isEmpty)
        #expect(try Self.columns(s, "users") == ["id", "name"])

        // Two hours from now the rest is past the window too (the clock is the caller's).
        let later = try await s.engine.purge(now: Date().addingTimeInterval(7200))
        #expect(later.map(\.name) == [Self.dropped(Self.second, "note")])
        #expect(try Self.columns(s, "orders") == ["id"])
        #expect(try Self.aside(s).isEmpty)
        #expect(try s.rows("SELECT count(*) FROM orders") == ["1"])
        #expect(try await s.engine.purge(now: Date().addingTimeInterval(7200)).isEmpty)
    }

    @Test("a purge cut off half-way (a locked table) goes on next time; start purges; only teal's own objects are dropped")
    func interruptedAndGuarded() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch(options: PostgresSchemaOptions(lockTimeout: 0.2, lockAttempts: 2, retention: 3600))
        try await Self.prepared(s)
        try s.sql("UPDATE teal.aside SET put_aside_at = now() - interval '2 hours'")
        // Rows naming things that are not teal's, or that are gone already (a purge that dropped them and was cut
        // off before it could say so cannot happen, its row goes in the same transaction; a hand-made one can).
        try s.sql("""
            INSERT INTO teal.aside VALUES
              ('public', 'x', 'column', 'users', 'name', now() - interval '1 day'),
              ('public', 'x', 'table', 'public', 'users', now() - interval '1 day'),
              ('public', 'x', 'column', 'users', '_teal_dropped_00000000_gone', now() - interval '1 day'),
              ('public', 'x', 'table', 'teal_kept_00000000', 'gone', now() - interval '1 day')
            """)

        let holder = try s.cluster.background(s.database, "BEGIN; SELECT count(*) FROM public.orders; SELECT pg_sleep(30); COMMIT;")
        defer { holder.stop() }
        var open = false
        for _ in 0..<100 where !open {
            open = (try? s.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND state <> 'idle' AND pid <> pg_backend_pid()")) == "1"
            if !open { usleep(50_000) }
        }
        #expect(open)
        let purged = try await s.engine.purge()
        #expect(Set(purged.map(\.name)) == [Self.dropped(Self.first, "nick"), "logs", "_teal_dropped_00000000_gone", "gone"])
        #expect(try Self.columns(s, "orders") == ["id", Self.dropped(Self.second, "note")], "the locked table keeps its column for now")
        #expect(try Self.columns(s, "users") == ["id", "name"], "a row naming an app column is refused")
        #expect(try s.rows("SELECT count(*) FROM users") == ["2"], "a row naming an app table is refused")
        holder.stop()
        try s.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")

        // The next start purges first, and finishes what was left.
        try await s.engine.start(try pgMigration("0004_more", "operations:\n  - add_column:\n      table: users\n      column: {name: email, type: text, nullable: true}\n"))
        #expect(try Self.columns(s, "orders") == ["id"])
        #expect(try Self.aside(s) == ["x column users.name", "x table public.users"], "only the refused rows are left")
        #expect(try s.rows("SELECT id || ':' || name FROM users ORDER BY id") == ["1:Ada", "2:Grace"])
    }

    @Test("a database whose migrations completed before teal kept the record gets it, dated from each complete")
    func earlierCompletesAreRecorded() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch(options: PostgresSchemaOptions(retention: 3600))
        try await Self.prepared(s)
        try s.sql("DROP TABLE teal.aside")
        try s.sql("UPDATE teal.migrations SET completed_at = now() - interval '2 hours' WHERE name = '\(Self.first)'")
        try await s.engine.start(try pgMigration("0004_more", "operations:\n  - add_column:\n      table: users\n      column: {name: email, type: text, nullable: true}\n"))
        #expect(try s.rows("""
            SELECT count(*) FROM teal.aside a JOIN teal.migrations m ON m.schema_name = a.schema_name AND m.name = a.migration
            WHERE a.put_aside_at = m.completed_at
            """) == ["1"], "0003's, dated from its complete")
        // The start purged 0002's right away (dated two hours ago), and keeps 0003's.
        #expect(try Self.aside(s) == ["\(Self.second) column orders.\(Self.dropped(Self.second, "note"))"])
        #expect(try Self.columns(s, "users") == ["id", "name", "email"])
    }
}
