import Foundation
import GRDB
import Manifest

/// Rows that hold values their table no longer declares, after a rollback dropped added columns from the
/// declaration only (`SQLiteSession.dropAddedColumn`), and the batched clean-up of those values.
///
/// SQLite reads such a row by ignoring its extra values, so apps and every statement see the declared shape at
/// once. The one thing the leftovers would break is a later `ADD COLUMN`, which would show them as the new
/// column's values; so every start clears them first, and rollback clears them as soon as it has committed.
/// Clearing rewrites each row in rowid batches (an update that sets a column to itself writes the row in the
/// declared shape), paced like a backfill, with the cursor saved in each batch's transaction.
enum RowTrim {
    static let table = "_teal_trim"

    static func create(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS "\(table)" (
                table_name TEXT PRIMARY KEY,
                last_rowid INTEGER NOT NULL,
                max_rowid INTEGER NOT NULL
            )
            """)
    }

    /// Records that every row of `name` up to its largest rowid now may hold undeclared values. Rows inserted
    /// later are written in the declared shape.
    static func schedule(_ db: Database, table name: String) throws {
        try create(db)
        let q = Identifiers.quote(name)
        try db.execute(sql: """
            INSERT INTO "\(table)" (table_name, last_rowid, max_rowid)
            SELECT ?, coalesce((SELECT min(rowid) FROM \(q)), 1) - 1, coalesce((SELECT max(rowid) FROM \(q)), 0) WHERE true
            ON CONFLICT (table_name) DO UPDATE SET last_rowid = excluded.last_rowid, max_rowid = max(max_rowid, excluded.max_rowid)
            """, arguments: [name.lowercased()])
    }

    /// The column a clean-up update sets to itself: not the rowid, preferably in no index (no index entry to
    /// rewrite) and nullable (no constraint to check). Nil when the table has no other column.
    static func rewrittenColumn(_ db: Database, table name: String, without dropped: String? = nil) throws -> String? {
        let columns = try Row.fetchAll(db, sql: "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)", arguments: [name])
        let keys = columns.filter { ($0["pk"] as Int? ?? 0) > 0 }
        let indexed = Set(try String.fetchAll(db, sql: """
            SELECT lower(ii.name) FROM pragma_index_list(?) il, pragma_index_info(il.name) ii WHERE ii.name IS NOT NULL
            """, arguments: [name]))
        let triggers = try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE AND sql IS NOT NULL",
                                           arguments: [name])
        // A CHECK naming the column is evaluated again when the update sets it (even to itself).
        let items = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", arguments: [name])
            .flatMap(SQLText.tableItems) ?? []
        let checked = Set(items.filter { SQLText.tokens($0).contains { $0.isKeyword("CHECK") } }.flatMap { item in
            columns.compactMap { $0["name"] as String? }.filter { SQLText.mentionsWord(item, $0) }.map { $0.lowercased() }
        })
        let candidates = columns.compactMap { row -> (name: String, rank: Int)? in
            let column: String = row["name"]
            if let dropped, column.lowercased() == dropped.lowercased() { return nil }
            if triggers.contains(where: { SQLText.mentionsWord($0, column) }) { return nil }
            let isRowidAlias = keys.count == 1 && (row["pk"] as Int? ?? 0) > 0 && (row["type"] as String? ?? "").uppercased() == "INTEGER"
            if isRowidAlias { return nil }
            let rank = (checked.contains(column.lowercased()) ? 4 : 0) + (indexed.contains(column.lowercased()) ? 2 : 0)
                + ((row["notnull"] as Int? ?? 0) == 1 ? 1 : 0)
            return (column, rank)
        }
        return candidates.min { $0.rank < $1.rank }?.name
    }

    struct Job {
        var table: String
        var last: Int64
        var max: Int64
    }

    static func pending(_ db: Database) throws -> [Job] {
        guard try db.tableExists(table) else { return [] }
        return try Row.fetchAll(db, sql: "SELECT table_name, last_rowid, max_rowid FROM \"\(table)\" ORDER BY table_name").map {
            Job(table: $0["table_name"], last: $0["last_rowid"], max: $0["max_rowid"])
        }
    }
}

extension SchemaEngine {
    /// Clears the undeclared values rollbacks left in rows (see `RowTrim`), in short paced batches; resumes
    /// where an earlier run stopped. Does nothing, cheaply, when nothing is pending.
    func trimRows() throws {
        let jobs = try queue.read { try RowTrim.pending($0) }
        for job in jobs {
            let q = Identifiers.quote(job.table)
            let started = BackfillPacer.now()
            guard let column = try queue.read({ db -> String? in
                try db.tableExists(job.table) ? RowTrim.rewrittenColumn(db, table: job.table) : nil
            }) else {
                // The table went, or has nothing but its key: one rewrite of the whole table, if it is still there.
                try write { db in try db.inTransaction(.immediate) {
                    if try db.tableExists(job.table) {
                        try db.execute(sql: "ALTER TABLE \(q) ADD COLUMN \"_teal_trim\"")
                        try db.execute(sql: "ALTER TABLE \(q) DROP COLUMN \"_teal_trim\"")
                    }
                    try db.execute(sql: "DELETE FROM \"\(RowTrim.table)\" WHERE table_name = ?", arguments: [job.table])
                    return .commit
                } }
                continue
            }
            let c = Identifiers.quote(column)
            let batches = try inPacedBatches(of: job.table, after: job.last, through: job.max) { db, after, upper in
                try db.cachedStatement(sql: "UPDATE \(q) SET \(c) = \(c) WHERE rowid > ? AND rowid <= ?").execute(arguments: [after, upper])
                try db.cachedStatement(sql: "UPDATE \"\(RowTrim.table)\" SET last_rowid = ? WHERE table_name = ?").execute(arguments: [upper, job.table])
            }
            _ = try write { try $0.execute(sql: "DELETE FROM \"\(RowTrim.table)\" WHERE table_name = ?", arguments: [job.table]) }
            logger.info("cleared dropped columns' values", metadata: ["table": "\(job.table)", "batches": "\(batches)",
                                                                  "seconds": "\(String(format: "%.3f", BackfillPacer.now() - started))"])
        }
    }
}
