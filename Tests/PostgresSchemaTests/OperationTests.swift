import Foundation
import Manifest
import Testing
import TestSupport
@testable import PostgresSchema
@testable import Schema

/// One operation case on PostgreSQL: an old shape made by migration 0001 (raw SQL), a migration 0002 with the
/// operation, and what must hold in each phase. The runner adds what holds for every operation.
struct PGCase: Sendable, CustomTestStringConvertible {
    var name: String
    var setup: String
    var migration: String
    var started: @Sendable (PGScratch) throws -> Void
    var rolledBack: @Sendable (PGScratch) throws -> Void = { _ in }
    var restarted: @Sendable (PGScratch) throws -> Void = { _ in }
    var completed: @Sendable (PGScratch) throws -> Void
    var testDescription: String { name }
}

let old = "0001_setup"
let new = "0002_change"

enum PGHarness {
    /// start → checks → rollback → the app schema exactly as before (but what was kept aside), no teal trigger,
    /// function or version schema left → checks → start → checks → complete → only the new version schema,
    /// no trigger or function left → checks.
    static func run(_ c: PGCase) async throws {
        let s = try PGScratch(batchSize: 3)
        let setup = try pgMigration(old, "operations:\n  - sql:\n      up: \(json(c.setup))\n")
        try await s.engine.start(setup)
        try await s.engine.complete(setup.name)
        let m = try pgMigration(new, c.migration)
        let before = try shape(s)

        try await s.engine.start(m)
        #expect(try await s.engine.status().inFlight?.state == .started, "\(c.name): started")
        try c.started(s)

        try await s.engine.rollback(m.name)
        #expect(try await s.engine.status().migrations.last?.state == .rolledBack, "\(c.name): rolled back")
        let after = try shape(s)
        #expect(after == before, "\(c.name): rollback leaves the app schema as before: \(after.filter { !before.contains($0) }) instead of \(before.filter { !after.contains($0) })")
        let left = try machinery(s)
        #expect(left.isEmpty, "\(c.name): no trigger or function left after rollback: \(left)")
        #expect(try s.rows("SELECT nspname FROM pg_namespace WHERE nspname = 'public_\(new)'").isEmpty, "\(c.name): no new version schema")
        try c.rolledBack(s)

        try await s.engine.start(m)
        #expect(try await s.engine.status().inFlight?.state == .started, "\(c.name): started again")
        try c.restarted(s)

        try await s.engine.complete(m.name)
        #expect(try await s.engine.status().lastCompleted?.name == m.name, "\(c.name): completed")
        #expect(try machinery(s).isEmpty, "\(c.name): no trigger or function left after complete")
        #expect(try s.rows("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'public\\_0%' ORDER BY 1") == ["public_\(new)"],
                "\(c.name): only the new version schema is left")
        #expect(try s.rows("SELECT conname FROM pg_constraint WHERE convalidated = false AND connamespace = 'public'::regnamespace").isEmpty,
                "\(c.name): every constraint validated")
        #expect(try s.rows("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid").isEmpty, "\(c.name): no invalid index")
        try c.completed(s)
        try await reopenAndCompleteAgain(s, c, m)
    }

    /// The complete undone (reopen) → both version schemas, the new shape reads exactly as before, every table of
    /// the old shape reads → complete again → the new shape still reads the same, only its version schema left.
    /// Where the complete cannot be undone, reopen refuses and changes nothing.
    static func reopenAndCompleteAgain(_ s: PGScratch, _ c: PGCase, _ m: Migration) async throws {
        let newShape = try snapshot(s, new)
        if let blocker = try await s.engine.observe().reopenBlocker {
            // Only what complete did that cannot be undone may refuse it here (not the window, not the record).
            let reasons = ["complete dropped constraint", "its SQL ran at complete", "complete moved"]
            #expect(reasons.contains { blocker.contains($0) }, "\(c.name): reopen refused for another reason: \(blocker)")
            await #expect(throws: SchemaError.self, "\(c.name): reopen refused (\(blocker))") { try await s.engine.reopen(m.name) }
            #expect(try await s.engine.status().lastCompleted?.name == m.name, "\(c.name): still completed after the refused reopen")
            #expect(try snapshot(s, new) == newShape, "\(c.name): the refused reopen changed nothing")
            return
        }
        try await s.engine.reopen(m.name)
        #expect(try await s.engine.status().inFlight?.state == .started, "\(c.name): reopened")
        #expect(try s.rows("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'public\\_0%' ORDER BY 1") == ["public_\(old)", "public_\(new)"],
                "\(c.name): both version schemas after reopen")
        #expect(try snapshot(s, new) == newShape, "\(c.name): the new shape reads as before reopen")
        for view in try s.rows("SELECT viewname FROM pg_views WHERE schemaname = 'public_\(old)' ORDER BY 1") {
            _ = try s.rows("SELECT count(*) FROM \(view)", as: old)
        }
        try await s.engine.complete(m.name)
        #expect(try await s.engine.status().lastCompleted?.name == m.name, "\(c.name): completed again")
        #expect(try snapshot(s, new) == newShape, "\(c.name): the new shape reads as before, completed again")
        #expect(try machinery(s).isEmpty, "\(c.name): no trigger or function left after the second complete")
        #expect(try s.rows("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'public\\_0%' ORDER BY 1") == ["public_\(new)"],
                "\(c.name): only the new version schema after the second complete")
    }

    /// Every row of every view of `migration`'s version schema, as text.
    static func snapshot(_ s: PGScratch, _ migration: String) throws -> [String] {
        var out: [String] = []
        for view in try s.rows("SELECT viewname FROM pg_views WHERE schemaname = 'public_\(migration)' ORDER BY 1") {
            out += try s.rows("SELECT '\(view) ' || v::text FROM \(view) v ORDER BY 1", as: migration).map { $0 }
        }
        return out
    }

    static func json(_ s: String) -> String {
        String(decoding: try! JSONEncoder().encode(s), as: UTF8.self)
    }

    /// The app schema as text lines: columns (but kept-aside ones), constraints, indexes.
    static func shape(_ s: PGScratch) throws -> [String] {
        try s.rows("""
            SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
            FROM information_schema.columns WHERE table_schema = 'public' AND column_name NOT LIKE '\\_teal\\_kept\\_%'
            UNION ALL SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
            FROM pg_constraint WHERE connamespace = 'public'::regnamespace
            UNION ALL SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
            ORDER BY 1
            """)
    }

    static func machinery(_ s: PGScratch) throws -> [String] {
        try s.rows("""
            SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE '\\_teal\\_%'
            UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = to_regnamespace('teal')
            """)
    }
}

let usersSetup = "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, age integer); INSERT INTO users (name, age) SELECT 'user ' || g, g FROM generate_series(1, 10) g"

let pgCases: [PGCase] = [
    PGCase(name: "create_table", setup: usersSetup, migration: """
        operations:
          - create_table:
              name: orders
              columns:
                - {name: id, type: serial, pk: true}
                - {name: user_id, type: integer, references: {name: orders_user_fk, table: users, column: id}}
                - {name: total, type: numeric, default: "0", check: {name: orders_total_ck, constraint: "total >= 0"}}
        """,
        started: { (s: PGScratch) throws in
            try s.sql("INSERT INTO orders (user_id, total) VALUES (1, 5)", as: new)
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO orders (user_id, total) VALUES (999, 5)", as: new) }
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO orders (user_id, total) VALUES (1, -1)", as: new) }
            #expect(throws: (any Error).self) { try s.sql("SELECT * FROM orders", as: old) }
        },
        rolledBack: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT count(*) FROM teal_kept_\(PlanBuilder.tag(new)).orders") == ["1"], "the table's rows are kept aside")
        },
        restarted: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT total FROM orders", as: new) == ["5"], "kept rows are back")
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT count(*) FROM orders", as: new) == ["1"])
        }),
    PGCase(name: "add_column NOT NULL with default, unique, check", setup: usersSetup, migration: """
        operations:
          - add_column:
              table: users
              column: {name: code, type: text, unique: true, check: {name: code_len, constraint: "length(code) > 2"}}
              up: "'u' || lpad(id::text, 4, '0')"
          - add_column:
              table: users
              column: {name: score, type: integer, default: "7"}
        """,
        started: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT code || ' ' || score FROM users WHERE id = 3", as: new) == ["u0003 7"])
            try s.sql("INSERT INTO users (name) VALUES ('old shape')", as: old)
            #expect(try s.rows("SELECT code FROM users WHERE name = 'old shape'", as: new) == ["u0011"])
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name, code, score) VALUES ('x', 'u0003', 1)", as: new) }
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name, code, score) VALUES ('x', 'ab', 1)", as: new) }
            #expect(throws: (any Error).self) { try s.sql("SELECT code FROM users", as: old) }
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'code'") == ["NO"])
            #expect(try s.rows("SELECT conname FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype = 'u'") == ["users_code_key"])
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name, score) VALUES ('y', 1)", as: new) }
        }),
    PGCase(name: "add_column without up is kept aside on rollback", setup: usersSetup, migration: """
        operations:
          - add_column:
              table: users
              column: {name: nickname, type: text, nullable: true}
        """,
        started: { (s: PGScratch) throws in try s.sql("UPDATE users SET nickname = 'nick' || id WHERE id <= 2", as: new) },
        rolledBack: { (s: PGScratch) throws in try s.sql("INSERT INTO users (name) VALUES ('during rollback')", as: old) },
        restarted: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT nickname FROM users WHERE nickname IS NOT NULL ORDER BY id", as: new) == ["nick1", "nick2"],
                    "values only the new shape held are back")
        },
        completed: { (s: PGScratch) throws in #expect(try s.rows("SELECT count(*) FROM users WHERE nickname IS NOT NULL", as: new) == ["2"]) }),
    PGCase(name: "drop_column with down", setup: usersSetup, migration: """
        operations:
          - drop_column:
              table: users
              column: name
              down: "'user ' || id"
        """,
        started: { (s: PGScratch) throws in
            try s.sql("INSERT INTO users (age) VALUES (99)", as: new)
            #expect(try s.rows("SELECT name FROM users WHERE age = 99", as: old) == ["user 11"])
            #expect(throws: (any Error).self) { try s.sql("SELECT name FROM users", as: new) }
        },
        rolledBack: { (s: PGScratch) throws in
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (age) VALUES (1)", as: old) }
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT count(*) FROM users", as: new) == ["11"])
        }),
    PGCase(name: "rename_column and rename_table", setup: usersSetup, migration: """
        operations:
          - rename_column: {table: users, from: age, to: years}
          - rename_table: {from: users, to: people}
        """,
        started: { (s: PGScratch) throws in
            try s.sql("INSERT INTO people (name, years) VALUES ('new', 3)", as: new)
            #expect(try s.rows("SELECT age FROM users WHERE name = 'new'", as: old) == ["3"])
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT years FROM people WHERE name = 'new'", as: new) == ["3"])
            #expect(try s.rows("SELECT to_regclass('public.people') IS NOT NULL") == ["t"])
        }),
    PGCase(name: "alter_column type and nullability with up and down", setup: usersSetup, migration: """
        operations:
          - alter_column:
              table: users
              column: age
              type: text
              nullable: false
              up: "coalesce(age::text, 'unknown')"
              down: "CASE WHEN age ~ '^[0-9]+$' THEN age::integer END"
        """,
        started: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT age FROM users WHERE id = 4", as: new) == ["4"])
            try s.sql("INSERT INTO users (name, age) VALUES ('n', 'forty')", as: new)
            #expect(try s.rows("SELECT coalesce(age::text, 'null') FROM users WHERE name = 'n'", as: old) == ["null"])
            try s.sql("INSERT INTO users (name) VALUES ('o')", as: old)
            #expect(try s.rows("SELECT age FROM users WHERE name = 'o'", as: new) == ["unknown"])
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT data_type || ' ' || is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'age'") == ["text NO"])
            // The twin's value went with the rollback (it has `up`, so the old column is the truth); `up` filled it again.
            #expect(try s.rows("SELECT age FROM users WHERE name = 'n'", as: new) == ["unknown"])
        }),
    PGCase(name: "alter_column: an update is carried when it changes a column the expression reads, by its text form",
           setup: "CREATE TABLE prices (id serial PRIMARY KEY, amount numeric NOT NULL, note text); INSERT INTO prices (amount) VALUES (1.0), (2), (3)",
           migration: """
        operations:
          - alter_column:
              table: prices
              column: amount
              type: text
              up: "amount::text"
              down: "amount::numeric"
        """,
        started: { (s: PGScratch) throws in
            // 1.0 and 1.00 are equal numbers with different text: the new shape must see the new spelling.
            try s.sql("UPDATE prices SET amount = 1.00 WHERE id = 1", as: old)
            #expect(try s.rows("SELECT amount FROM prices WHERE id = 1", as: new) == ["1.00"])
            try s.sql("UPDATE prices SET note = 'old note' WHERE id = 2", as: old)
            #expect(try s.rows("SELECT amount || ' ' || note FROM prices WHERE id = 2", as: new) == ["2 old note"])
            try s.sql("UPDATE prices SET amount = '3.50' WHERE id = 3", as: new)
            #expect(try s.rows("SELECT amount::text FROM prices WHERE id = 3", as: old) == ["3.50"])
            try s.sql("UPDATE prices SET note = 'new note' WHERE id = 3", as: new)
            #expect(try s.rows("SELECT amount::text || ' ' || note FROM prices WHERE id = 3", as: old) == ["3.50 new note"])
            #expect(try s.rows("SELECT amount FROM prices WHERE id = 3", as: new) == ["3.50"])
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT amount FROM prices ORDER BY id", as: new) == ["1.00", "2", "3.50"])
        }),
    PGCase(name: "alter_column of an identity key: new-shape inserts get keys meanwhile, the new column is the identity after",
           setup: "CREATE TABLE tickets (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text); INSERT INTO tickets (title) VALUES ('a'), ('b')",
           migration: """
        operations:
          - alter_column: {table: tickets, column: id, type: bigint}
        """,
        started: { (s: PGScratch) throws in
            try s.sql("INSERT INTO tickets (title) VALUES ('new')", as: new)
            try s.sql("INSERT INTO tickets (title) VALUES ('old')", as: old)
            let viaNew = try s.rows("SELECT title || ' ' || id FROM tickets ORDER BY id", as: new)
            #expect(viaNew.count == 4 && Set(viaNew.map { $0.split(separator: " ").last! }).count == 4, "\(viaNew)")
            #expect(try s.rows("SELECT title || ' ' || id FROM tickets ORDER BY id", as: old) == viaNew, "both shapes see the same keys")
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT attname || ' ' || attidentity::text FROM pg_attribute WHERE attrelid = 'public.tickets'::regclass AND attidentity <> ''") == ["id a"])
            #expect(try s.rows("SELECT pg_typeof(id)::text FROM tickets LIMIT 1", as: new) == ["bigint"])
            try s.sql("INSERT INTO tickets (title) VALUES ('after')", as: new)
            #expect(try s.rows("SELECT count(DISTINCT id) FROM tickets", as: new) == ["5"])
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO tickets (id, title) VALUES (99, 'explicit')", as: new) }
        }),
    PGCase(name: "drop_constraint: the new shape writes what the check refused, the old shape keeps it",
           setup: usersSetup + "; ALTER TABLE users ADD CONSTRAINT age_adult CHECK (age >= 1), ADD CONSTRAINT age_small CHECK (age < 1000)",
           migration: """
        operations:
          - drop_constraint: {table: users, name: age_adult, up: age, down: "greatest(age, 1)"}
        """,
        started: { (s: PGScratch) throws in
            try s.sql("INSERT INTO users (name, age) VALUES ('kid', -9)", as: new)
            #expect(try s.rows("SELECT age FROM users WHERE name = 'kid'", as: new) == ["-9"])
            #expect(try s.rows("SELECT age FROM users WHERE name = 'kid'", as: old) == ["1"])
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name, age) VALUES ('kid2', -9)", as: old) }
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name, age) VALUES ('old', 5000)", as: new) }
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT conname FROM pg_constraint WHERE conrelid = 'public.users'::regclass AND contype = 'c' ORDER BY 1") == ["age_small"])
            // The rollback kept the old shape's value (1); the second start filled the twin from it.
            #expect(try s.rows("SELECT age FROM users WHERE name = 'kid'", as: new) == ["1"])
            try s.sql("INSERT INTO users (name, age) VALUES ('kid3', -3)", as: new)
        }),
    PGCase(name: "alter_column carries the column's foreign key onto its new definition",
           setup: usersSetup + "; CREATE TABLE notes (id serial PRIMARY KEY, user_id integer CONSTRAINT notes_owner REFERENCES users (id) ON DELETE CASCADE); INSERT INTO notes (user_id) VALUES (1)",
           migration: """
        operations:
          - alter_column: {table: notes, column: user_id, type: bigint}
        """,
        started: { (s: PGScratch) throws in
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO notes (user_id) VALUES (999)", as: new) }
            try s.sql("INSERT INTO notes (user_id) VALUES (2)", as: new)
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("""
                SELECT conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated FROM pg_constraint
                WHERE conrelid = 'public.notes'::regclass AND contype = 'f'
                """) == ["notes_owner FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE true"])
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO notes (user_id) VALUES (999)", as: new) }
            try s.sql("DELETE FROM users WHERE id = 2", as: new)
            #expect(try s.rows("SELECT user_id FROM notes ORDER BY id", as: new) == ["1"], "the cascade is carried too")
        }),
    PGCase(name: "alter_column carries the column's check constraints onto its new definition",
           setup: usersSetup + "; ALTER TABLE users ADD CONSTRAINT age_sane CHECK (age >= 0 AND age < 200), ADD CONSTRAINT age_name CHECK (age > 0 OR name <> '')",
           migration: """
        operations:
          - alter_column: {table: users, column: age, type: bigint}
        """,
        started: { (s: PGScratch) throws in
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name, age) VALUES ('n', -1)", as: new) }
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name, age) VALUES ('n', 300)", as: old) }
            try s.sql("INSERT INTO users (name, age) VALUES ('n', 20)", as: new)
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("""
                SELECT conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated FROM pg_constraint
                WHERE conrelid = 'public.users'::regclass AND contype = 'c' ORDER BY 1
                """) == ["age_name CHECK (((age > 0) OR (name <> ''::text))) true", "age_sane CHECK (((age >= 0) AND (age < 200))) true"])
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name, age) VALUES ('m', -5)", as: new) }
            #expect(try s.rows("SELECT pg_typeof(age)::text FROM users WHERE name = 'n'", as: new) == ["bigint"])
        }),
    PGCase(name: "create_index and drop_index", setup: usersSetup + "; CREATE INDEX users_age_idx ON users (age)", migration: """
        operations:
          - create_index: {name: users_name_idx, table: users, columns: [name], predicate: "age > 1"}
          - drop_index: {name: users_age_idx}
        """,
        started: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT indexname FROM pg_indexes WHERE tablename = 'users' AND indexname LIKE 'users\\_%idx' ORDER BY 1") == ["users_age_idx", "users_name_idx"])
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT indexname FROM pg_indexes WHERE tablename = 'users' AND indexname LIKE 'users\\_%idx' ORDER BY 1") == ["users_name_idx"])
        }),
    PGCase(name: "create_constraint check and foreign key, drop and rename constraint", setup: usersSetup + "; ALTER TABLE users ADD CONSTRAINT age_pos CHECK (age > 0); CREATE TABLE notes (id serial PRIMARY KEY, user_id integer)", migration: """
        operations:
          - create_constraint: {table: users, name: name_len, type: check, columns: [name], check: "length(name) > 1"}
          - create_constraint: {table: notes, name: notes_user_fk, type: foreign_key, columns: [user_id], references: {table: users, columns: [id]}}
          - create_constraint: {table: users, name: users_name_key, type: unique, columns: [name]}
          - rename_constraint: {table: users, from: age_pos, to: age_positive}
        """,
        started: { (s: PGScratch) throws in
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name) VALUES ('a')", as: new) }
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO notes (user_id) VALUES (12345)", as: new) }
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT conname FROM pg_constraint WHERE conrelid = 'users'::regclass ORDER BY 1") == ["age_positive", "name_len", "users_name_key", "users_pkey"])
        }),
    PGCase(name: "create_constraint check and unique with up fixing existing rows, writes in both shapes",
           setup: usersSetup + "; UPDATE users SET age = -age WHERE id <= 3; UPDATE users SET name = 'dup' WHERE id IN (4, 5)", migration: """
        operations:
          - create_constraint:
              table: users
              name: users_age_positive
              type: check
              columns: [age]
              check: "age > 0"
              up: {age: "CASE WHEN age <= 0 THEN -age ELSE age END"}
              down: {age: "age"}
          - create_constraint:
              table: users
              name: users_name_unique
              type: unique
              columns: [name]
              up: {name: "CASE WHEN name LIKE 'dup%' THEN name || '-' || id ELSE name END"}
        """,
        started: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT age FROM users WHERE id = 2", as: new) == ["2"], "up fixed the violating row in the new shape")
            #expect(try s.rows("SELECT age FROM users WHERE id = 2", as: old) == ["-2"], "the old shape keeps its value")
            #expect(try s.rows("SELECT name FROM users WHERE id IN (4, 5) ORDER BY id", as: new) == ["dup-4", "dup-5"], "up de-duplicated")
            #expect(try s.rows("SELECT name FROM users WHERE id IN (4, 5) ORDER BY id", as: old) == ["dup", "dup"])
            // The old shape writes unconstrained; `up` gives the new shape a value that satisfies the constraints.
            try s.sql("INSERT INTO users (name, age) VALUES ('dup', -7)", as: old)
            try s.sql("UPDATE users SET age = -9 WHERE id = 6", as: old)
            #expect(try s.rows("SELECT name || ' ' || age FROM users WHERE id = 11", as: new) == ["dup-11 7"])
            #expect(try s.rows("SELECT age FROM users WHERE id = 6", as: new) == ["9"])
            // The new shape is constrained, and its writes reach the old shape through `down`.
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name, age) VALUES ('neg', -1)", as: new) }
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name, age) VALUES ('user 1', 1)", as: new) }
            #expect(throws: (any Error).self) { try s.sql("UPDATE users SET name = 'user 2' WHERE id = 1", as: new) }
            try s.sql("INSERT INTO users (name, age) VALUES ('fresh', 30)", as: new)
            try s.sql("UPDATE users SET age = 40 WHERE id = 1", as: new)
            #expect(try s.rows("SELECT age FROM users WHERE name = 'fresh'", as: old) == ["30"])
            #expect(try s.rows("SELECT age FROM users WHERE id = 1", as: old) == ["40"])
        },
        rolledBack: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT age FROM users WHERE id IN (2, 6) ORDER BY id", as: old) == ["-2", "-9"], "old rows untouched")
            #expect(try s.rows("SELECT name FROM users WHERE id IN (4, 5, 11) ORDER BY id", as: old) == ["dup", "dup", "dup"])
            #expect(try s.rows("SELECT age FROM users WHERE name = 'fresh'", as: old) == ["30"], "new-shape rows remain")
        },
        restarted: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT name || ' ' || age FROM users WHERE id IN (2, 11) ORDER BY id", as: new) == ["user 2 2", "dup-11 7"])
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'users'::regclass ORDER BY 1") == [
                "users_age_positive CHECK ((age > 0))", "users_name_unique UNIQUE (name)", "users_pkey PRIMARY KEY (id)"])
            #expect(try s.rows("SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'name'") == ["NO"])
            #expect(try s.rows("SELECT count(*) FROM users WHERE age <= 0", as: new) == ["0"])
            #expect(try s.rows("SELECT name FROM users WHERE id = 5", as: new) == ["dup-5"])
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name, age) VALUES ('neg', -1)", as: new) }
            try s.sql("INSERT INTO users (name, age) VALUES ('after', 5)", as: new)
        }),
    PGCase(name: "alter_column of the primary key and of a uniquely constrained column keeps their indexes and foreign keys",
           setup: usersSetup + """
               ; ALTER TABLE users ADD CONSTRAINT users_name_key UNIQUE (name); CREATE INDEX users_id_age_idx ON users (id, age);                CREATE INDEX users_young_idx ON users (age) WHERE id > 5;                CREATE TABLE notes (id serial PRIMARY KEY, user_id integer REFERENCES users (id) ON DELETE CASCADE, body text);                INSERT INTO notes (user_id, body) VALUES (1, 'a'), (2, 'b')
               """, migration: """
        operations:
          - alter_column: {table: users, column: id, type: bigint}
          - alter_column: {table: users, column: name, type: varchar(200)}
        """,
        started: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT pg_typeof(id)::text || ' ' || pg_typeof(name)::text FROM users WHERE id = 1", as: new) == ["bigint character varying"])
            #expect(try s.rows("SELECT pg_typeof(id)::text FROM users WHERE id = 1", as: old) == ["integer"])
            try s.sql("INSERT INTO users (name, age) VALUES ('n1', 1)", as: new)
            try s.sql("INSERT INTO users (name) VALUES ('o1')", as: old)
            #expect(try s.rows("SELECT count(DISTINCT id) FROM users WHERE name IN ('n1', 'o1')", as: new) == ["2"])
            try s.sql("INSERT INTO notes (user_id, body) SELECT id, 'c' FROM users WHERE name = 'n1'", as: new)
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (id, name) VALUES (1, 'again')", as: new) }
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (name) VALUES ('user 1')", as: new) }
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name IN ('id', 'name') ORDER BY column_name") == ["bigint", "character varying"])
            #expect(try s.rows("SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'users'::regclass ORDER BY 1") == [
                "users_name_key UNIQUE (name)", "users_pkey PRIMARY KEY (id)"])
            #expect(try s.rows("SELECT indexname || ' ' || substr(indexdef, strpos(indexdef, 'USING')) FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'users' ORDER BY 1") == [
                "users_id_age_idx USING btree (id, age)", "users_name_key USING btree (name)", "users_pkey USING btree (id)",
                "users_young_idx USING btree (age) WHERE (id > 5)"], "every index covers the new columns under its name")
            #expect(try s.rows("SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'notes'::regclass AND contype = 'f'") == [
                "notes_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE"])
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO notes (user_id, body) VALUES (99999, 'x')", as: new) }
            try s.sql("DELETE FROM users WHERE id = 1", as: new)
            #expect(try s.rows("SELECT count(*) FROM notes WHERE user_id = 1", as: new) == ["0"], "the foreign key still cascades")
            try s.sql("INSERT INTO users (name) VALUES ('after')", as: new)
            #expect(try s.rows("SELECT pg_get_serial_sequence('public.users', 'id') IS NOT NULL") == ["t"], "the sequence belongs to the new column")
            #expect(throws: (any Error).self) { try s.sql("INSERT INTO users (id, name) VALUES (2, 'again')", as: new) }
        }),
    PGCase(name: "drop_table keeps the rows aside", setup: usersSetup + "; CREATE TABLE legacy (id int PRIMARY KEY); INSERT INTO legacy VALUES (1), (2)", migration: """
        operations:
          - drop_table: {name: legacy}
        """,
        started: { (s: PGScratch) throws in
            #expect(throws: (any Error).self) { try s.sql("SELECT * FROM legacy", as: new) }
            #expect(try s.rows("SELECT count(*) FROM legacy", as: old) == ["2"])
        },
        completed: { (s: PGScratch) throws in
            #expect(try s.rows("SELECT count(*) FROM teal_kept_\(PlanBuilder.tag(new)).legacy") == ["2"])
        }),
    PGCase(name: "sql with down, and set_replica_identity", setup: usersSetup, migration: """
        operations:
          - sql:
              up: "CREATE TABLE audit (id serial PRIMARY KEY, what text)"
              down: "DROP TABLE audit"
          - set_replica_identity: {table: users, identity: {type: full}}
        """,
        started: { (s: PGScratch) throws in
            try s.sql("INSERT INTO audit (what) VALUES ('x')", as: new)
            #expect(try s.rows("SELECT relreplident FROM pg_class WHERE oid = 'public.users'::regclass") == ["f"])
        },
        rolledBack: { (s: PGScratch) throws in #expect(try s.rows("SELECT to_regclass('public.audit') IS NULL") == ["t"], "down ran") },
        restarted: { (s: PGScratch) throws in try s.sql("INSERT INTO audit (what) VALUES ('y')", as: new) },
        completed: { (s: PGScratch) throws in #expect(try s.rows("SELECT what FROM audit", as: new) == ["y"]) }),
]

@Suite("PostgreSQL: every operation through start, rollback, start and complete", .serialized)
struct PGOperationTests {
    @Test(arguments: pgCases)
    func operation(_ c: PGCase) async throws {
        guard postgresAvailable() else { return }
        try await PGHarness.run(c)
    }
}

@Suite("PostgreSQL: what cannot be done online is refused at plan time", .serialized)
struct PGRefusalTests {
    @Test func changingAReferencedKeyToAnIncompatibleTypeIsRefusedBeforeAnythingIsApplied() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch()
        let setup = try pgMigration(old, "operations:\n  - sql:\n      up: \(PGHarness.json(usersSetup + "; CREATE TABLE notes (id serial PRIMARY KEY, user_id integer REFERENCES users (id))"))\n")
        try await s.engine.start(setup)
        try await s.engine.complete(setup.name)
        let before = try PGHarness.shape(s)
        let m = try pgMigration(new, """
            operations:
              - alter_column: {table: users, column: id, type: text}
            """)
        do {
            try await s.engine.start(m)
            Issue.record("the start should have been refused")
        } catch {
            let message = "\(error)"
            #expect(message.contains("operations[0] (alter_column)"), "\(message)")
            #expect(message.contains("foreign key notes.notes_user_id_fkey"), "\(message)")
            #expect(message.contains("drop_constraint"), "the workaround is named: \(message)")
        }
        #expect(try await s.engine.status().inFlight == nil, "nothing is in flight")
        #expect(try PGHarness.shape(s) == before, "nothing was applied")
        #expect(try s.rows("SELECT nspname FROM pg_namespace WHERE nspname = 'public_\(new)'").isEmpty)
    }
}
