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

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    private var pair: [Int] = []
    func bump() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
    func set(_ a: Int, _ b: Int) { lock.lock(); pair = [a, b]; lock.unlock() }
    var last: [Int] { lock.lock(); defer { lock.unlock() }; return pair }
}
