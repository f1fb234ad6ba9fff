import Foundation
import GRDB
import Manifest

/// Collects, during a rollback, the old-shape columns whose NOT NULL the start lifted.
final class NotNullDeferral {
    var columns: [(table: String, column: String)] = []
}

/// NOT NULL put back on old-shape columns after a rollback without scanning the table under the write lock.
///
/// Re-declaring NOT NULL needs every row checked, which on a large table holds the lock for a second or more. The
/// rollback's transaction instead leaves those columns nullable and adds triggers refusing a NULL there, exactly as
/// NOT NULL would (the new shape, which could leave them empty, is gone). A read then scans the table outside the
/// lock: rows written after the triggers cannot be NULL, so when the scan finds none, one short transaction puts the
/// declaration back byte for byte and drops the triggers. If rows are NULL (a `down` gave NULL during an
/// interrupted backfill) the triggers stay and the error is logged; the next start or rollback looks again.
enum NotNullRestore {
    static let table = "_teal_not_null"

    static func create(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS "\(table)" (
                table_name TEXT PRIMARY KEY,
                columns TEXT NOT NULL,
                declaration TEXT NOT NULL
            )
            """)
    }

    static func triggerName(_ table: String, _ column: String, _ event: String) -> String {
        "_teal_not_null_\(table.count)_\(table.lowercased())_\(column.lowercased())_\(event)"
    }

    /// Adds the refusing triggers and records the declaration to put back.
    static func schedule(_ db: Database, table name: String, columns: [String], declaration: String) throws {
        try create(db)
        let q = Identifiers.quote(name)
        for column in columns {
            let c = Identifiers.quote(column)
            let message = "NOT NULL constraint failed: \(name).\(column)".replacingOccurrences(of: "'", with: "''")
            for (event, clause) in [("insert", "BEFORE INSERT ON \(q)"), ("update", "BEFORE UPDATE OF \(c) ON \(q)")] {
                try db.execute(sql: """
                    CREATE TRIGGER IF NOT EXISTS \(Identifiers.quote(triggerName(name, column, event))) \(clause) WHEN NEW.\(c) IS NULL
                    BEGIN SELECT RAISE(ABORT, '\(message)'); END
                    """)
            }
        }
        let json = String(decoding: try JSONEncoder().encode(columns), as: UTF8.self)
        try db.execute(sql: "INSERT OR REPLACE INTO \"\(table)\" (table_name, columns, declaration) VALUES (?, ?, ?)",
                       arguments: [name.lowercased(), json, declaration])
    }

    struct Job {
        var table: String
        var columns: [String]
        var declaration: String
    }

    static func pending(_ db: Database) throws -> [Job] {
        guard try db.tableExists(table) else { return [] }
        return try Row.fetchAll(db, sql: "SELECT table_name, columns, declaration FROM \"\(table)\" ORDER BY table_name").map {
            Job(table: $0["table_name"], columns: (try? JSONDecoder().decode([String].self, from: Data(($0["columns"] as String).utf8))) ?? [],
                declaration: $0["declaration"])
        }
    }
}

extension SchemaEngine {
    /// Puts NOT NULL back where a rollback left it for later (see `NotNullRestore`); cheap when nothing is pending.
    /// Returns, in words, what is still pending because rows hold NULL.
    @discardableResult
    func restoreNotNull() throws -> [String] {
        let jobs = try queue.read { try NotNullRestore.pending($0) }
        var left: [String] = []
        for job in jobs {
            let q = Identifiers.quote(job.table)
            // Outside the write lock: WAL readers do not hold up writers.
            let nulls = try queue.read { db -> [String: Int] in
                guard try db.tableExists(job.table) else { return [:] }
                var found: [String: Int] = [:]
                for column in job.columns {
                    found[column] = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(q) WHERE \(Identifiers.quote(column)) IS NULL") ?? 0
                }
                return found
            }
            if let bad = nulls.first(where: { $0.value > 0 }) {
                left.append("\(bad.value) row(s) of \(job.table) have no \(bad.key), which is NOT NULL in the shape a rollback restored")
                logger.error("NOT NULL not restored yet", metadata: [
                    "table": "\(job.table)", "column": "\(bad.key)",
                    "why": "\(bad.value) row(s) have no value, which the old shape requires; new NULLs are refused meanwhile; fix the rows and the next start or rollback re-declares it"])
                continue
            }
            try write { db in try db.inTransaction(.immediate) {
                let dialect = try self.dialect.session(db)
                if try dialect.tableExists(job.table), let current = try dialect.tableSQL(job.table),
                   let items = SQLText.tableItems(job.declaration) {
                    let declared = items.filter { !SQLText.isTableConstraint($0) }.compactMap { SQLText.tokens($0).first?.identifier?.lowercased() }
                    if try dialect.columns(of: job.table).map({ $0.name.lowercased() }) == declared, current != job.declaration {
                        try dialect.rewriteTableSQL(job.table, job.declaration)
                    }
                }
                for column in job.columns {
                    for event in ["insert", "update"] {
                        try db.execute(sql: "DROP TRIGGER IF EXISTS \(Identifiers.quote(NotNullRestore.triggerName(job.table, column, event)))")
                    }
                }
                try db.execute(sql: "DELETE FROM \"\(NotNullRestore.table)\" WHERE table_name = ?", arguments: [job.table])
                return .commit
            } }
        }
        return left
    }
}
