import Foundation
import GRDB
import Manifest

/// The check that no `down` gives NULL, for an existing row, to a column the old shape declares NOT NULL: a
/// rollback could not give such a row back to the old shape. It follows the backfill on a connection of its own:
/// each range of rows is read once the batch that filled it has committed, while the next batches run, so the
/// check adds little to the time `start` takes. `finish` checks what is left (rows past the backfill's bound too)
/// and reports the first failure; `failure` lets the backfill stop as soon as one is found.
final class DownCheck: @unchecked Sendable {
    /// One `down` whose NULL the old shape refuses: the operation it comes from, the column and the expression.
    struct Check: Sendable {
        var table: String
        var origin: Int
        var column: String
        var expression: String
    }

    let checks: [Check]
    private let migration: Migration
    private let reader: DatabaseQueue?
    private let work = DispatchQueue(label: "teal.schema.down-check")
    private let lock = NSLock()
    /// Per table: the rows up to this rowid are checked, and up to this one they may be.
    private var checked: [String: Int64] = [:]
    private var target: [String: Int64] = [:]
    private var draining = false
    private var found: (any Error)?

    /// The checks `expand` recorded for `migration`, with a connection of their own to `path` when there are any
    /// (an in-memory database has no second connection: its rows are all checked by `finish`).
    init(path: String, configuration: Configuration, migration: Migration, in db: Database) throws {
        let pattern = SchemaEngine.downCheckKey.replacingOccurrences(of: "_", with: "\\_") + "%"
        let rows = try Row.fetchAll(db, sql: """
            SELECT key, value FROM "\(History.state)" WHERE migration = ? AND key LIKE ? ESCAPE '\\' ORDER BY key
            """, arguments: [migration.name, pattern])
        checks = rows.compactMap { row in
            let key: String = row["key"]
            let parts = (row["value"] as String).split(separator: "\n", maxSplits: 2).map(String.init)
            guard parts.count == 3, let origin = Int(parts[0]) else { return nil }
            let table = String(key.dropFirst(SchemaEngine.downCheckKey.count).split(separator: ".").dropLast().joined(separator: "."))
            return Check(table: table, origin: origin, column: parts[1], expression: parts[2])
        }
        self.migration = migration
        let inMemory = path.isEmpty || path == ":memory:" || path.hasPrefix("file::memory:")
        reader = checks.isEmpty || inMemory ? nil : try DatabaseQueue(path: path, configuration: configuration)
    }

    /// The first failure found so far.
    var failure: (any Error)? { lock.withLock { found } }

    /// Rows of `table` up to `rowid` have their new values (committed): they are checked in the background.
    func advance(_ table: String, to rowid: Int64) {
        guard reader != nil, checks.contains(where: { $0.table == table }) else { return }
        let start = lock.withLock { () -> Bool in
            target[table] = max(target[table] ?? 0, rowid)
            guard !draining, found == nil else { return false }
            draining = true
            return true
        }
        if start { work.async { self.drain() } }
    }

    private func drain() {
        while true {
            let next = lock.withLock { () -> (String, Int64, Int64)? in
                guard found == nil, let (table, to) = target.first(where: { $0.value > (checked[$0.key] ?? 0) }) else {
                    draining = false
                    return nil
                }
                return (table, checked[table] ?? 0, to)
            }
            guard let (table, from, to) = next else { return }
            do {
                try run(table, after: from, upTo: to)
                lock.withLock { checked[table] = max(checked[table] ?? 0, to) }
            } catch {
                lock.withLock { found = error; draining = false }
                return
            }
        }
    }

    /// Waits for the background checks, checks every row not checked yet (on `db` without a connection of its
    /// own), and throws the first failure.
    func finish(on db: DatabaseQueue) throws {
        work.sync {} // after the last drain the backfill asked for
        if let found = failure { throw found }
        for table in Set(checks.map(\.table)).sorted() {
            try run(table, after: lock.withLock { checked[table] ?? 0 }, upTo: nil, on: db)
        }
    }

    /// Checks the rows of `table` after rowid `from` up to `to` (all of them from `from` on when nil; the whole
    /// table, whatever its key, when `from` is 0 too).
    private func run(_ table: String, after from: Int64, upTo to: Int64?, on queue: DatabaseQueue? = nil) throws {
        guard let connection = reader ?? queue else { return }
        try connection.read { db in
            for check in checks where check.table == table {
                let q = Identifiers.quote(table)
                var range = ""
                var arguments: StatementArguments = []
                if from > 0 { range += " AND rowid > ?"; arguments += [from] }
                if let to { range += " AND rowid <= ?"; arguments += [to] }
                guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(q) WHERE (\(check.expression)) IS NULL\(range))",
                                        arguments: arguments) == true else { continue }
                // Counted over the rows filled so far: from the table's first row to the end of this range.
                let n = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(q) WHERE (\(check.expression)) IS NULL\(to == nil ? "" : " AND rowid <= ?")",
                                         arguments: to.map { [$0] } ?? []) ?? 0
                throw SchemaError(migration: migration.name, operationIndex: check.origin, operationKind: migration.operations[check.origin].kind,
                                  "`down` gives NULL for \(n) existing row(s) of \(table), but \(check.column) is NOT NULL in the old shape, so a rollback could not give those rows back; make `down` always yield a value (e.g. with COALESCE)")
            }
        }
    }
}
