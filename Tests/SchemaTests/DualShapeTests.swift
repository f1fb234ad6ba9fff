import Foundation
import GRDB
import Logging
import Manifest
import Testing
@testable import Schema

/// The triggers that keep both shapes in step, and the pacing of the backfill around other writers.
@Suite struct DualShapeTests {
    /// A second application connection, with `recursive_triggers` as given.
    private func connection(_ s: Scratch, recursive: Bool) throws -> DatabaseQueue {
        var config = Configuration()
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA recursive_triggers = \(recursive ? "ON" : "OFF")") }
        return try DatabaseQueue(path: s.path, configuration: config)
    }

    @Test(arguments: [false, true])
    func valuesThatDoNotRoundTripStayAsWritten(recursive: Bool) throws {
        let s = try Scratch(usersSetup)
        try s.engine().start(splitName)
        let app = try connection(s, recursive: recursive)
        func row(_ condition: String) throws -> [String?] {
            try app.read { db in
                let r = try Row.fetchOne(db, sql: "SELECT name, first_name, last_name FROM users WHERE \(condition)")
                return [r?["name"], r?["first_name"], r?["last_name"]]
            }
        }
        try app.write { db in
            // New shape: `down` gives the old column; `up` would split it differently, and must not run.
            try db.execute(sql: "INSERT INTO users (first_name, last_name) VALUES ('Mary Ann', 'Evans')")
            // Old shape: `up` gives the new columns; `down` would join them differently, and must not run.
            try db.execute(sql: "INSERT INTO users (name) VALUES ('Ada  Byron ')")
        }
        #expect(try row("first_name = 'Mary Ann'") == ["Mary Ann Evans", "Mary Ann", "Evans"])
        #expect(try row("name = 'Ada  Byron '") == ["Ada  Byron ", "Ada", " Byron "])

        try app.write { db in
            try db.execute(sql: "UPDATE users SET last_name = 'Cross' WHERE first_name = 'Mary Ann'")
            try db.execute(sql: "UPDATE users SET name = 'Augusta Ada King' WHERE name = 'Ada  Byron '")
        }
        #expect(try row("first_name = 'Mary Ann'") == ["Mary Ann Cross", "Mary Ann", "Cross"])
        #expect(try row("name = 'Augusta Ada King'") == ["Augusta Ada King", "Augusta", "Ada King"])

        // Several rows in one statement, in each shape.
        try app.write { db in
            try db.execute(sql: "UPDATE users SET name = name || ' Jr' WHERE id <= 2")
            try db.execute(sql: "UPDATE users SET first_name = upper(first_name) WHERE id IN (3, 4)")
        }
        #expect(try s.rows("SELECT name, first_name, last_name FROM users WHERE id <= 4 ORDER BY id") == [
            ["Ada Lovelace Jr", "Ada", "Lovelace Jr"], ["Alan Turing Jr", "Alan", "Turing Jr"],
            ["GRACE Hopper", "GRACE", "Hopper"], ["CHER", "CHER", ""],
        ])
        #expect(try s.int("SELECT count(*) FROM users") == 6)
        #expect(try s.integrity() == "ok")
    }

    /// The update triggers test in their WHEN, on NEW, whether a write left the row in step; an expression with a
    /// column named like a keyword, or with a subquery (which keeps the test in the body only), still carries
    /// writes both ways.
    @Test func triggersCarryWritesWithKeywordColumnsAndSubqueries() throws {
        let s = try Scratch("""
            CREATE TABLE teams (id INTEGER PRIMARY KEY, label TEXT NOT NULL);
            INSERT INTO teams VALUES (1, 'red'), (2, 'blue');
            CREATE TABLE games (id INTEGER PRIMARY KEY, "end" INTEGER NOT NULL);
            INSERT INTO games VALUES (1, 5), (2, -1);
            CREATE TABLE players (id INTEGER PRIMARY KEY, team INTEGER NOT NULL);
            INSERT INTO players VALUES (1, 1), (2, 2);
            """)
        try s.engine().start(migration("0002_games", [
            .addColumn(AddColumn(table: "games", column: column("finish", "integer"), up: "CASE WHEN \"end\" > 0 THEN \"end\" ELSE 0 END")),
            .dropColumn(DropColumn(table: "games", column: "end", down: "finish")),
            .addColumn(AddColumn(table: "players", column: column("team_label"), up: "(SELECT label FROM teams WHERE teams.id = team)")),
            .dropColumn(DropColumn(table: "players", column: "team", down: "(SELECT id FROM teams WHERE teams.label = team_label)")),
        ]))
        try s.exec("INSERT INTO games (\"end\") VALUES (7)")
        try s.exec("INSERT INTO games (finish) VALUES (9)")
        try s.exec("UPDATE games SET \"end\" = 3 WHERE id = 2")
        try s.exec("UPDATE games SET finish = 4 WHERE id = 1")
        #expect(try s.rows("SELECT id, \"end\", finish FROM games ORDER BY id") == [["1", "4", "4"], ["2", "3", "3"], ["3", "7", "7"], ["4", "9", "9"]])
        try s.exec("INSERT INTO players (team) VALUES (2)")
        try s.exec("INSERT INTO players (team_label) VALUES ('red')")
        try s.exec("UPDATE players SET team = 1 WHERE id = 2")
        try s.exec("UPDATE players SET team_label = 'blue' WHERE id = 1")
        #expect(try s.rows("SELECT id, team, team_label FROM players ORDER BY id") == [["1", "2", "blue"], ["2", "1", "red"], ["3", "2", "blue"], ["4", "1", "red"]])
        #expect(try s.integrity() == "ok")
    }

    @Test func renameKeepsBothNamesInStepWithRecursiveTriggers() throws {
        let s = try Scratch(usersSetup)
        let m = migration("0002_rename", [.renameColumn(RenameColumn(table: "users", from: "name", to: "full_name"))])
        try s.engine().start(m)
        let app = try connection(s, recursive: true)
        try app.write { db in
            try db.execute(sql: "INSERT INTO users (name) VALUES ('Old Shape')")
            try db.execute(sql: "INSERT INTO users (full_name) VALUES ('New Shape')")
            try db.execute(sql: "UPDATE users SET full_name = 'Alan M. Turing' WHERE id = 2")
            try db.execute(sql: "UPDATE users SET name = 'Grace B. Hopper' WHERE id = 3")
        }
        #expect(try s.rows("SELECT name, full_name FROM users WHERE id IN (2, 3) OR id > 4 ORDER BY id") == [
            ["Alan M. Turing", "Alan M. Turing"], ["Grace B. Hopper", "Grace B. Hopper"], ["Old Shape", "Old Shape"], ["New Shape", "New Shape"],
        ])
    }

    /// A column the old shape requires never keeps a NULL that a write in either shape leaves there: it gets
    /// `down` over the new shape's values as they are after the write, with or without `recursive_triggers`,
    /// once the new-shape update trigger holds the guard.
    @Test(arguments: [false, true])
    func requiredOldColumnGetsDownForNullsFromEitherShape(recursive: Bool) throws {
        let s = try Scratch("CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL); INSERT INTO posts (title) VALUES ('hello'), ('world'), ('third');")
        let m = migration("0002_title_nullable", [.alterColumn(AlterColumn(table: "posts", column: "title", nullable: true, up: "title",
                                                                         down: "CASE WHEN title IS NULL THEN 'placeholder' ELSE title END"))])
        try s.engine().start(m)
        #expect(try s.int("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_nn%' ESCAPE '\\'") == 0)
        let app = try connection(s, recursive: recursive)
        try app.write { db in
            // Old shape: NULL into its NOT NULL column goes to the new shape, and comes back as `down` of it.
            try db.execute(sql: "UPDATE posts SET title = NULL WHERE id = 1")
            // New shape: NULL into the twin.
            try db.execute(sql: "UPDATE posts SET _teal_new_title = NULL WHERE id = 2")
            try db.execute(sql: "INSERT INTO posts (_teal_new_title) VALUES (NULL)")
            try db.execute(sql: "INSERT INTO posts (_teal_new_title) VALUES ('new')")
            // Values still round-trip both ways.
            try db.execute(sql: "UPDATE posts SET _teal_new_title = 'changed' WHERE id = 3")
            try db.execute(sql: "INSERT INTO posts (title) VALUES ('old')")
        }
        #expect(try s.rows("SELECT title, _teal_new_title FROM posts ORDER BY id") == [
            ["placeholder", nil], ["placeholder", nil], ["changed", "changed"], ["placeholder", nil], ["new", "new"], ["old", "old"],
        ])
        #expect(try s.int("SELECT count(*) FROM posts WHERE title IS NULL") == 0)
    }

    /// When the old-shape update trigger writes nothing the new-shape one watches, the guard keeps a trigger of its
    /// own: a NULL in the required column still gets `down`, from either shape.
    @Test(arguments: [false, true])
    func guardStaysOnItsOwnWhenTheUpdateTriggersDoNotMeet(recursive: Bool) throws {
        let s = try Scratch("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, nick TEXT); INSERT INTO people (name, nick) VALUES ('ada', 'a'), ('alan', 'b');")
        let m = migration("0002_shout", [
            .addColumn(AddColumn(table: "people", column: column("shout"), up: "upper(name)")),
            .dropColumn(DropColumn(table: "people", column: "name", down: "'n-' || nick")),
        ])
        try s.engine().start(m)
        #expect(try s.int("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_nn%' ESCAPE '\\'") == 1)
        let app = try connection(s, recursive: recursive)
        try app.write { db in
            try db.execute(sql: "UPDATE people SET name = NULL WHERE id = 1")
            try db.execute(sql: "INSERT INTO people (shout, nick) VALUES ('GRACE', 'g')")
            try db.execute(sql: "UPDATE people SET nick = 'c' WHERE id = 2")
            try db.execute(sql: "INSERT INTO people (name, nick) VALUES ('cher', 'd')")
        }
        #expect(try s.rows("SELECT name, shout, nick FROM people ORDER BY id") == [
            ["n-a", nil, "a"], ["n-c", "ALAN", "c"], ["n-g", "GRACE", "g"], ["cher", "CHER", "d"],
        ])
    }

    /// The trigger for new-shape updates is created only once the backfill is over, and the backfill's
    /// writes run no trigger.
    @Test func newShapeUpdateTriggerArrivesWithStarted() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine(batchSize: 1)
        let seen = Seen()
        let app = s.app
        try engine.start(splitName) { done, _ in
            let triggers = (try? app.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name") }) ?? []
            seen.add(done, triggers.count)
        }
        // Insert, old-shape update, and the guard giving `down` to a NULL written into the old shape's NOT NULL name.
        #expect(seen.values.allSatisfy { $0.1 == 3 })
        // Then the new-shape update trigger, which takes the guard over (one program less in every INSERT).
        #expect(try s.rows("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name") == [
            ["_teal_0002_split_name_users_ins"], ["_teal_0002_split_name_users_upd"], ["_teal_0002_split_name_users_upd_new"],
        ])
        #expect(try s.int("SELECT count(*) FROM _teal_migration_state WHERE key LIKE 'deferred%'") == 0)
        try engine.rollback(splitName.name)
        #expect(try s.int("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'") == 0)
    }

    /// Another connection inserts and updates in the old shape all through a backfill of small batches: every
    /// row ends with the new columns computed from its last old-shape value.
    @Test func writersDuringBackfillAreCarriedOver() throws {
        let s = try Scratch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER DEFAULT 0);")
        try s.exec("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
            INSERT INTO users (name) SELECT 'First' || i || ' Last' || i FROM n
            """)
        let engine = try s.engine(batchSize: 50)
        let stop = Stopper()
        let app = try connection(s, recursive: false)
        let writer = Thread {
            var i = 0
            while !stop.stopped {
                try? app.write { db in
                    try db.execute(sql: "INSERT INTO users (name) VALUES (?)", arguments: ["Writer \(i)"])
                    try db.execute(sql: "UPDATE users SET name = ? WHERE id = ?", arguments: ["Renamed \(i)", (i * 37) % 5000 + 1])
                }
                i += 1
                Thread.sleep(forTimeInterval: 0.002)
            }
            stop.finish()
        }
        writer.start()
        try engine.start(splitName)
        stop.stop()
        stop.wait()
        let up1 = "CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END"
        let up2 = "CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END"
        #expect(try s.int("SELECT count(*) FROM users") > 5000)
        #expect(try s.int("SELECT count(*) FROM users WHERE first_name IS NOT (\(up1)) OR last_name IS NOT (\(up2))") == 0)
    }

    @Test func pacerGapsCoverTheBusyHandlersSteps() {
        #expect(BackfillPacer.gap(afterHolding: 0.0004) == 0.001)
        #expect(abs(BackfillPacer.gap(afterHolding: 0.002) - 0.002) < 1e-9)
        #expect(abs(BackfillPacer.gap(afterHolding: 0.008) - 0.005) < 1e-9)
        #expect(abs(BackfillPacer.gap(afterHolding: 0.12) - 0.025) < 1e-9)
        // Whatever the moment a writer first found the lock taken, one of its attempts falls in the gap.
        for held in stride(from: 0.0002, through: 0.05, by: 0.0002) {
            let gap = BackfillPacer.gap(afterHolding: held)
            for blockedFor in stride(from: 0.0001, through: held, by: 0.0001) {
                let attempt = BackfillPacer.attempts.first { $0 >= blockedFor } ?? .infinity
                #expect(attempt - blockedFor < gap, "held \(held), blocked \(blockedFor)")
            }
        }
    }

    @Test func pacerIsQuietUntilAnotherConnectionWrites() {
        var pacer = BackfillPacer(options: SchemaEngineOptions(batchSize: 1000))
        var t = 100.0
        var quiet: [TimeInterval] = []
        for _ in 0..<70 {
            quiet.append(pacer.finished(work: 0.002, held: 0.002, at: t))
            t += 0.002
        }
        #expect(quiet.filter { $0 > 0 }.count == 1)
        #expect(abs(quiet.first { $0 > 0 }! - (0.025 + BackfillPacer.margin)) < 1e-9)
        #expect(!pacer.isActive(at: t), "quiet: checkpoints every quietFrames")
        pacer.sawForeignWrite(at: t)
        #expect(pacer.isActive(at: t + 0.5), "active: checkpoints every 800 frames")
        #expect(abs(pacer.finished(work: 0.002, held: 0.002, at: t) - (0.002 + BackfillPacer.margin)) < 1e-9)
        #expect(pacer.finished(work: 0.002, held: 0.002, at: t + BackfillPacer.activeWindow + 0.001) == 0)
        #expect(!pacer.isActive(at: t + BackfillPacer.activeWindow + 0.001))
        // A slow batch shrinks the next ones; fast ones grow back to the batch size.
        #expect(pacer.rows == 1000)
        _ = pacer.finished(work: 0.02, held: 0.02, at: t)
        #expect(pacer.rows == 250)
        _ = pacer.finished(work: 0.001, held: 0.001, at: t)
        _ = pacer.finished(work: 0.001, held: 0.001, at: t)
        #expect(pacer.rows == 1000)
        var off = BackfillPacer(options: SchemaEngineOptions(batchPause: 0.003, yieldsToWriters: false))
        off.sawForeignWrite(at: t)
        #expect(off.finished(work: 0.002, held: 0.002, at: t) == 0.003)
    }
}

final class Stopper: @unchecked Sendable {
    private let condition = NSCondition()
    private var isStopped = false
    private var finished = false
    var stopped: Bool { condition.withLock { isStopped } }
    func stop() { condition.withLock { isStopped = true } }
    func finish() { condition.lock(); finished = true; condition.broadcast(); condition.unlock() }
    func wait() { condition.lock(); while !finished { condition.wait() }; condition.unlock() }
}
