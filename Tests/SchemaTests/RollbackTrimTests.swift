import Foundation
import GRDB
import Manifest
import Testing
@testable import Schema

/// Rollback drops the columns a start added from the declaration only, in one short transaction, and clears
/// the rows' leftover values afterwards in batches (`RowTrim`), so writers never wait for a table rewrite.
@Suite struct RollbackTrimTests {
    static let manyUsers = usersSetup + """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) INSERT INTO users (name) SELECT 'User ' || i FROM n;
        """

    @Test func rollbackLeavesTheDeclarationAtOnceAndClearsTheValuesAfter() throws {
        let s = try Scratch(Self.manyUsers)
        let before = try s.schema()
        let engine = try s.engine(batchSize: 25)
        try engine.start(splitName)
        try s.exec("UPDATE users SET first_name = 'Augusta' WHERE id = 1")
        var atCommit: (pending: Int, notNull: Int, columns: [String], nullRefused: Bool)?
        try engine.rollback(splitName.name) {
            atCommit = try? (s.int("SELECT count(*) FROM _teal_trim"), s.int("SELECT count(*) FROM _teal_not_null"), s.columns("users"),
                             (try? s.exec("INSERT INTO users (name) VALUES (NULL)")) == nil)
        }
        let seen = try #require(atCommit)
        #expect(seen.pending == 1, "the added columns left the declaration without DROP COLUMN's rewrite")
        #expect(seen.notNull == 1, "NOT NULL of name is re-declared after a scan outside the write lock")
        #expect(seen.nullRefused, "meanwhile a NULL name is refused, as NOT NULL would")
        #expect(seen.columns == ["id", "name", "age"])
        #expect(try s.int("SELECT count(*) FROM _teal_trim") == 0, "the leftover values are cleared before rollback returns")
        #expect(try s.int("SELECT count(*) FROM _teal_not_null") == 0)
        #expect(try s.schema() == before, "sqlite_schema is as before start, byte for byte")
        let leftovers = try s.machinery()
        #expect(leftovers.isEmpty, "\(leftovers)")
        #expect(try s.integrity() == "ok")
        #expect(try s.value("SELECT name FROM users WHERE id = 1") == "Augusta Lovelace")
        // A column added where the dropped ones were shows its own default on every row, not a leftover.
        try s.exec("ALTER TABLE users ADD COLUMN nickname TEXT DEFAULT 'none'")
        #expect(try s.int("SELECT count(*) FROM users") == 404)
        #expect(try s.int("SELECT count(*) FROM users WHERE nickname IS NOT 'none'") == 0)
    }

    @Test func startClearsWhatAnEarlierRollbackLeftBeforeAddingColumns() throws {
        let s = try Scratch(Self.manyUsers)
        let engine = try s.engine(batchSize: 25)
        try engine.start(splitName)
        try engine.rollbackLeavingRows(splitName.name)
        #expect(try s.int("SELECT count(*) FROM _teal_trim") == 1)
        let nickname = migration("0003_nickname", [
            .addColumn(AddColumn(table: "users", column: column("nickname", default: "'none'"))),
        ])
        try engine.start(nickname)
        #expect(try s.int("SELECT count(*) FROM _teal_trim") == 0)
        #expect(try s.int("SELECT count(*) FROM users WHERE nickname IS NOT 'none'") == 0,
                "no row shows the rolled-back first_name as its nickname")
        try engine.complete(nickname.name)
        #expect(try s.integrity() == "ok")
    }

    @Test func aTriggerOnTheTableMeansDropColumnWhichFiresNothing() throws {
        let s = try Scratch(Self.manyUsers + """
            CREATE TABLE audit (user_id INTEGER);
            CREATE TRIGGER users_audit AFTER UPDATE ON users BEGIN INSERT INTO audit VALUES (NEW.id); END;
            """)
        let before = try s.schema()
        let engine = try s.engine(batchSize: 50)
        try engine.start(splitName)
        let audited = try s.int("SELECT count(*) FROM audit")
        var pending = -1
        try engine.rollback(splitName.name) { pending = (try? s.int("SELECT count(*) FROM _teal_trim")) ?? -1 }
        #expect(pending == 0, "a batched clean-up would fire the app's trigger on every row")
        #expect(try s.int("SELECT count(*) FROM audit") == audited)
        #expect(try s.schema() == before)
        #expect(try s.columns("users") == ["id", "name", "age"])
    }

    @Test func twinAndCopyColumnsLeaveTheSameWay() throws {
        let s = try Scratch(Self.manyUsers)
        let before = try s.schema()
        let engine = try s.engine(batchSize: 25)
        let m = migration("0002_reshape", [
            .alterColumn(AlterColumn(table: "users", column: "age", type: "real", up: "CAST(age AS REAL)", down: "CAST(age AS INTEGER)")),
            .renameColumn(RenameColumn(table: "users", from: "name", to: "full_name")),
        ])
        try engine.start(m)
        var pending = -1
        try engine.rollback(m.name) { pending = (try? s.int("SELECT count(*) FROM _teal_trim")) ?? -1 }
        #expect(pending == 1)
        #expect(try s.schema() == before)
        try s.exec("ALTER TABLE users ADD COLUMN extra TEXT")
        try s.exec("ALTER TABLE users ADD COLUMN more TEXT")
        #expect(try s.int("SELECT count(*) FROM users WHERE extra IS NOT NULL OR more IS NOT NULL") == 0)
        #expect(try s.integrity() == "ok")
    }

    /// A row left without a value for an old-shape NOT NULL column (a `down` giving NULL while an interrupted
    /// backfill ran): the rollback still commits; NOT NULL waits, new NULLs are refused, and once the row is
    /// fixed the next rollback or start re-declares it.
    @Test func aNullLeftInAnOldShapeColumnKeepsNotNullPendingUntilFixed() throws {
        let s = try Scratch(Self.manyUsers)
        let before = try s.schema()
        let engine = try s.engine(batchSize: 25)
        let m = migration("0002_split", [
            .addColumn(AddColumn(table: "users", column: column("first_name"), up: "name")),
            .dropColumn(DropColumn(table: "users", column: "name", down: "first_name")),
        ])
        let stop: @Sendable () -> Bool = { true }
        #expect(throws: SchemaError.self) { try engine.start(m, shouldStop: stop) }
        // A new-shape insert whose `down` gives NULL, while the backfill is interrupted.
        try s.exec("INSERT INTO users (first_name) VALUES (NULL)")
        #expect(try s.int("SELECT count(*) FROM users WHERE name IS NULL") == 1)
        try engine.rollback(m.name)
        #expect(try s.int("SELECT count(*) FROM _teal_not_null") == 1)
        #expect(try s.notNull("users", "name") == false)
        s.refuses("INSERT INTO users (name) VALUES (NULL)", "NOT NULL constraint failed: users.name")
        s.refuses("UPDATE users SET name = NULL WHERE id = 1", "NOT NULL constraint failed: users.name")
        // No start while NOT NULL waits: it would take the column for nullable.
        let refused = #expect(throws: SchemaError.self) { try engine.start(migration("0003_nothing", [])) }
        #expect(refused?.description.contains("re-declare NOT NULL") == true, "\(String(describing: refused))")
        #expect(try s.int("SELECT count(*) FROM _teal_not_null") == 1)
        try s.exec("UPDATE users SET name = 'Fixed' WHERE name IS NULL")
        try engine.start(migration("0003_nothing", []))
        #expect(try s.int("SELECT count(*) FROM _teal_not_null") == 0)
        #expect(try s.schema() == before)
        #expect(try s.integrity() == "ok")
    }

    /// Values of a column added without `up` are copied aside in batches before the rollback's transaction;
    /// writes made after the copy began (updates, deletes, inserts, a changed key) reach the kept copy through
    /// triggers, so the next start brings back each row's last value, and only for rows that still exist.
    @Test func keptAsideInBatchesFollowsWritesMadeMeanwhile() throws {
        let s = try Scratch(Self.manyUsers)
        let engine = try s.engine(batchSize: 25)
        let m = migration("0002_nickname", [.addColumn(AddColumn(table: "users", column: column("nickname")))])
        try engine.start(m)
        try s.exec("UPDATE users SET nickname = 'nick ' || id WHERE id % 2 = 0")
        try engine.keepAsideInBatches(m.name)
        #expect(try s.int("SELECT count(*) FROM _teal_kept_0002_nickname_0") == 202)
        try s.exec("UPDATE users SET nickname = 'changed' WHERE id = 2")
        try s.exec("UPDATE users SET nickname = NULL WHERE id = 4")
        try s.exec("DELETE FROM users WHERE id = 6")
        try s.exec("INSERT INTO users (id, name, nickname) VALUES (1000, 'New One', 'newbie')")
        try s.exec("UPDATE users SET id = 2000 WHERE id = 8")
        var keptAtCommit = -1
        var trimAtCommit = -1
        try engine.rollback(m.name) {
            keptAtCommit = (try? s.int("SELECT count(*) FROM _teal_kept_0002_nickname_0")) ?? -1
            trimAtCommit = (try? s.int("SELECT count(*) FROM _teal_trim")) ?? -1
        }
        #expect(keptAtCommit == 201)
        #expect(trimAtCommit == 1, "the column left the declaration without a rewrite, the kept-aside triggers notwithstanding")
        #expect(try s.columns("users") == ["id", "name", "age"])
        // A row that reuses a deleted row's key gets nothing of the deleted row's.
        try s.exec("INSERT INTO users (id, name) VALUES (6, 'Reused Key')")
        try engine.start(m)
        #expect(try s.value("SELECT nickname FROM users WHERE id = 2") == "changed")
        #expect(try s.value("SELECT nickname FROM users WHERE id = 4") == nil)
        #expect(try s.value("SELECT nickname FROM users WHERE id = 6") == nil)
        #expect(try s.value("SELECT nickname FROM users WHERE id = 1000") == "newbie")
        #expect(try s.value("SELECT nickname FROM users WHERE id = 2000") == "nick 8")
        #expect(try s.value("SELECT nickname FROM users WHERE id = 10") == "nick 10")
        #expect(try s.int("SELECT count(*) FROM users WHERE nickname IS NOT NULL") == 201)
        let leftovers = try s.machinery()
        #expect(leftovers.allSatisfy { !$0.contains("keep") && !$0.contains("kept") }, "\(leftovers)")
    }

    /// Table options in either order: a WITHOUT ROWID table is refused at start whatever follows the option.
    @Test func withoutRowidIsFoundWhateverOptionFollows() throws {
        let s = try Scratch("CREATE TABLE tags (name TEXT PRIMARY KEY, hits INTEGER) WITHOUT ROWID, STRICT; INSERT INTO tags VALUES ('a', 1);")
        let m = migration("0002_tag_color", [.addColumn(AddColumn(table: "tags", column: column("color"), up: "'red'"))])
        let error = #expect(throws: SchemaError.self) { try s.engine().start(m) }
        #expect(error?.description.contains("WITHOUT ROWID") == true, "\(String(describing: error))")
        #expect(try s.columns("tags") == ["name", "hits"])
    }
}
