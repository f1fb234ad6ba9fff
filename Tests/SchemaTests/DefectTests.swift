import Synchronization
import Foundation
import GRDB
import Manifest
import Testing
@testable import Schema

/// Defects found with two live releases writing, one test each.
@Suite struct DefectTests {
    /// A value kept aside by a rollback belongs to its row, found by primary key; a row deleted meanwhile takes
    /// its value with it, so the row that reuses its id does not get it.
    @Test func keptValueNeverLandsOnAnotherRow() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let m = migration("0002_email", [.addColumn(AddColumn(table: "users", column: column("email")))])
        try engine.start(m)
        try s.exec("UPDATE users SET email = 'cher@example.com' WHERE id = 4")
        try s.exec("UPDATE users SET email = 'ada@example.com' WHERE id = 1")
        try engine.rollback(m.name)
        // Through blue: delete the row with the largest id and insert another, which SQLite gives the same id.
        try s.exec("DELETE FROM users WHERE id = 4")
        try s.exec("INSERT INTO users (name) VALUES ('Someone Else')")
        #expect(try s.int("SELECT id FROM users WHERE name = 'Someone Else'") == 4)
        try s.exec("UPDATE users SET id = 10 WHERE id = 1")
        try engine.start(m)
        #expect(try s.value("SELECT email FROM users WHERE id = 4") == nil)
        #expect(try s.value("SELECT email FROM users WHERE id = 10") == "ada@example.com")
        #expect(try s.objects(like: "_teal_kept%").isEmpty)
        try engine.complete(m.name)
    }

    /// Kept-aside data of a table with a composite key is keyed by that key.
    @Test func keptValuesFollowACompositeKey() throws {
        let t = try Scratch("CREATE TABLE sellers (name TEXT, zip INTEGER, PRIMARY KEY (name, zip)); INSERT INTO sellers VALUES ('a', 1), ('b', 2);")
        let engine = try t.engine()
        let m = migration("0002_rating", [.addColumn(AddColumn(table: "sellers", column: column("rating", "integer")))])
        try engine.start(m)
        try t.exec("UPDATE sellers SET rating = 5 WHERE name = 'b'")
        try engine.rollback(m.name)
        #expect(try t.rows("SELECT key0, key1, value FROM \"_teal_kept_0002_rating_0\"") == [["b", "2", "5"]])
        try t.exec("DELETE FROM sellers WHERE name = 'b'")
        try t.exec("INSERT INTO sellers VALUES ('b', 3)")
        try engine.start(m)
        #expect(try t.rows("SELECT name, zip, rating FROM sellers ORDER BY name, zip") == [["a", "1", nil], ["b", "3", nil]])
    }

    /// SQLite can give a table a second name only as a view, whose writes report wrong ids: refused, with the way round.
    @Test func renameTableIsRefusedWithTheWorkaround() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let m = migration("0002_people", [.renameTable(RenameTable(from: "users", to: "people"))])
        let error = #expect(throws: SchemaError.self) { try engine.start(m) }
        #expect(error?.description.contains("needs PostgreSQL") == true)
        #expect(error?.description.contains("last_insert_rowid()") == true)
        #expect(error?.description.contains("ALTER TABLE users RENAME TO people") == true)
        #expect(try engine.status().migrations.isEmpty)
        #expect(try s.objects(like: "people").isEmpty)

        // Why: a write through a view with INSTEAD OF triggers reports none of what the table would.
        try s.exec("CREATE VIEW people AS SELECT * FROM users; CREATE TRIGGER people_ins INSTEAD OF INSERT ON people BEGIN INSERT INTO users (name) VALUES (NEW.name); END")
        let (rowid, changes) = try s.app.write { db -> (Int64, Int) in
            try db.execute(sql: "INSERT INTO people (name) VALUES ('Via View')")
            return (db.lastInsertedRowID, db.changesCount)
        }
        #expect(rowid != 5 || changes != 1, "SQLite now reports ids through views; rename_table could be allowed")
        let parsed = try MigrationParser.parse(Array("operations:\n  - rename_table: {from: users, to: people}\n".utf8), fileName: "0002_people.yaml",
                                               path: "schema/0002_people.yaml", checksum: "x").get()
        #expect(MigrationValidation.check([parsed]).first?.description.hasPrefix("schema/0002_people.yaml:2:1: operations[0] (rename_table): serving table users") == true)
    }

    /// Rollback leaves each table's declaration exactly as it was, whatever the in-place edits re-spelled.
    @Test func rollbackRestoresTheDeclarationByteForByte() throws {
        let declared = "CREATE TABLE t (id INTEGER PRIMARY KEY,  name varchar(255) NOT NULL DEFAULT ('x'), note TEXT NOT NULL CHECK(length(note)>0))"
        let s = try Scratch(declared + "; INSERT INTO t (name, note) VALUES ('a', 'b');")
        let engine = try s.engine()
        let create = try #require(try s.value("SELECT sql FROM sqlite_master WHERE name = 't'"))
        #expect(create.contains("varchar(255) NOT NULL DEFAULT ('x')"))
        let m = migration("0002_shapes", [
            .alterColumn(AlterColumn(table: "t", column: "name", type: "text", up: "upper(name)", down: "lower(name)")),
            .dropColumn(DropColumn(table: "t", column: "note", down: "'n'")),
        ])
        try engine.start(m)
        #expect(try s.value("SELECT sql FROM sqlite_master WHERE name = 't'") != create, "start relaxes the old columns in place")
        try s.exec("INSERT INTO t (name) VALUES ('new shape')")
        try engine.rollback(m.name)
        let after = try s.value("SELECT sql FROM sqlite_master WHERE name = 't'")
        #expect(after == create)
        #expect(try s.integrity() == "ok")
    }

    /// A `down` that gives NULL to a column the old shape declares NOT NULL is caught at start, against the rows.
    @Test func downGivingNullIsCaughtAtStart() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let before = try s.schema()
        let m = migration("0002_split", [
            .addColumn(AddColumn(table: "users", column: column("first_name"), up: "CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END")),
            .addColumn(AddColumn(table: "users", column: column("last_name"), up: "CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) END")),
            .dropColumn(DropColumn(table: "users", column: "name", down: "first_name || ' ' || last_name")),
        ])
        let error = #expect(throws: SchemaError.self) { try engine.start(m) }
        #expect(error?.description.contains("operations[2] (drop_column)") == true, "\(String(describing: error))")
        #expect(error?.description.contains("`down` gives NULL for 1 existing row(s) of users, but name is NOT NULL") == true)
        #expect(try s.schema() == before)
        #expect(try engine.status().migrations.isEmpty)

        var fixed = m
        fixed.operations[2] = .dropColumn(DropColumn(table: "users", column: "name", down: "trim(first_name || ' ' || coalesce(last_name, ''))"))
        fixed.checksum = "fixed"
        try engine.start(fixed)
        try engine.rollback(fixed.name)
        #expect(try s.value("SELECT name FROM users WHERE id = 4") == "Cher")
    }

    /// The check follows the backfill batch by batch on a connection of its own; rows a backfill cut off earlier had
    /// filled are checked when it resumes, and a NULL past the backfill's rows (a row added during it) at the end.
    @Test func downGivingNullIsCaughtInEveryPartOfTheTable() throws {
        let m = migration("0002_split", [
            .addColumn(AddColumn(table: "users", column: column("first_name"), up: "CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END")),
            .addColumn(AddColumn(table: "users", column: column("last_name"), up: "CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) END")),
            .dropColumn(DropColumn(table: "users", column: "name", down: "first_name || ' ' || last_name")),
        ])
        let rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO users (name) SELECT 'First' || i || ' Last' || i FROM n"
        for badRow in [150, 1950] {
            let s = try Scratch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")
            try s.exec(rows)
            try s.exec("UPDATE users SET name = 'Mononym' WHERE id = ?", [badRow])
            let engine = try s.engine(batchSize: 100)
            let before = try s.schema()
            // The first start is cut off after 500 rows; the row at 150 was filled then, before the resume.
            let stop = Mutex(false)
            let cut = #expect(throws: SchemaError.self) {
                try engine.start(m, progress: { done, _ in if done >= 500 { stop.withLock { $0 = true } } }, shouldStop: { stop.withLock { $0 } })
            }
            if badRow == 150 {
                // The check may already have found it while the backfill ran; either way the start did not finish.
                if cut?.isInterruption != true {
                    #expect(cut?.description.contains("`down` gives NULL for 1 existing row(s) of users") == true, "\(String(describing: cut))")
                    #expect(try s.schema() == before)
                    continue
                }
            } else {
                #expect(cut?.isInterruption == true, "\(String(describing: cut))")
            }
            let error = #expect(throws: SchemaError.self) { try engine.start(m) }
            #expect(error?.isInterruption == false)
            #expect(error?.description.contains("`down` gives NULL for 1 existing row(s) of users, but name is NOT NULL") == true, "row \(badRow): \(String(describing: error))")
            let after = try s.schema()
            #expect(after == before, "row \(badRow): the start is undone: \(after) vs \(before)")
            #expect(try engine.status().migrations.last?.state != .started)
        }
    }
}
