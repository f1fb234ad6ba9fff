import Foundation
import GRDB
import Manifest

/// The SQLite side of the schema engine, working on one connection inside the engine's transaction.
///
/// SQLite has one namespace per file, so both shapes live in it at once: the real table keeps the old shape;
/// columns the new shape adds or renames are extra physical columns kept in step by `AFTER` triggers; a renamed
/// table gets a view under its new name with `INSTEAD OF` triggers.
final class SQLiteDialect: SchemaDialect {
    /// A table earlier versions of the engine used as a trigger guard; complete and rollback still drop it.
    static let guardTable = "_teal_guard"

    let db: Database

    init(_ db: Database) { self.db = db }

    private func q(_ name: String) -> String { Identifiers.quote(name) }

    func execute(_ sql: String) throws {
        try db.execute(sql: sql)
        db.clearSchemaCache()
    }

    func tableExists(_ name: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE)", arguments: [name]) ?? false
    }

    func viewExists(_ name: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = ? COLLATE NOCASE)", arguments: [name]) ?? false
    }

    func tableOfIndex(_ name: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ? COLLATE NOCASE", arguments: [name])
    }

    func columns(of table: String) throws -> [ColumnInfo] {
        try Row.fetchAll(db, sql: "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?)", arguments: [table]).map {
            ColumnInfo(name: $0["name"], type: $0["type"] ?? "", notNull: ($0["notnull"] as Int?) == 1,
                       defaultSQL: $0["dflt_value"], primaryKey: (($0["pk"] as Int?) ?? 0) > 0)
        }
    }

    func indexes(of table: String) throws -> [IndexInfo] {
        let rows = try Row.fetchAll(db, sql: "SELECT name, \"unique\", origin FROM pragma_index_list(?)", arguments: [table])
        return try rows.map { row in
            let name: String = row["name"]
            let columns = try String.fetchAll(db, sql: "SELECT name FROM pragma_index_info(?) ORDER BY seqno", arguments: [name])
            let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", arguments: [name])
            let origin: String = row["origin"]
            return IndexInfo(name: name, unique: (row["unique"] as Int?) == 1, fromConstraint: origin != "c", columns: columns, sql: sql)
        }
    }

    func hasRowid(_ table: String) throws -> Bool {
        let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", arguments: [table]) ?? ""
        let words = SQLText.tokens(sql).suffix(2).map { $0.text.uppercased() }
        return words != ["WITHOUT", "ROWID"]
    }

    func createTable(_ table: String, columns: [Manifest.ColumnDefinition]) throws {
        let defs = columns.map { c -> String in
            var s = "\(q(c.name)) \(c.type)"
            if c.primaryKey { s += " PRIMARY KEY" }
            if !c.nullable { s += " NOT NULL" }
            if c.unique { s += " UNIQUE" }
            if let d = c.default { s += " DEFAULT (\(d))" }
            if let check = c.check { s += " CHECK (\(check))" }
            if let r = c.references { s += " REFERENCES \(reference(r))" }
            return s
        }
        try execute("CREATE TABLE \(q(table)) (\(defs.joined(separator: ", ")))")
    }

    private func reference(_ text: String) -> String {
        guard let open = text.firstIndex(of: "("), text.hasSuffix(")") else { return q(text) }
        let table = String(text[..<open])
        let column = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
        return "\(q(table))(\(q(column)))"
    }

    func dropTable(_ table: String) throws { try execute("DROP TABLE \(q(table))") }

    func renameTable(_ from: String, to: String) throws { try execute("ALTER TABLE \(q(from)) RENAME TO \(q(to))") }

    func addColumn(_ table: String, name: String, type: String, literalDefault: String?, references: String?) throws {
        var s = "ALTER TABLE \(q(table)) ADD COLUMN \(q(name)) \(type)"
        if let literalDefault { s += " DEFAULT \(literalDefault)" }
        if let references { s += " REFERENCES \(reference(references))" }
        try execute(s)
    }

    func dropColumn(_ table: String, _ column: String) throws {
        try execute("ALTER TABLE \(q(table)) DROP COLUMN \(q(column))")
    }

    func renameColumn(_ table: String, from: String, to: String) throws {
        try execute("ALTER TABLE \(q(table)) RENAME COLUMN \(q(from)) TO \(q(to))")
    }

    func createIndex(name: String, table: String, columns: [String], unique: Bool) throws {
        try execute("CREATE \(unique ? "UNIQUE " : "")INDEX \(q(name)) ON \(q(table)) (\(columns.map(q).joined(separator: ", ")))")
    }

    func dropIndex(_ name: String) throws { try execute("DROP INDEX IF EXISTS \(q(name))") }

    /// Uses SQLite's documented in-place procedure for constraint changes that do not touch the stored rows:
    /// the table's `CREATE TABLE` text is rewritten under `writable_schema` and the schema version bumped.
    func setColumnConstraints(table: String, column: String, notNull: Bool, default defaultSQL: String?, addingCheck check: String?) throws {
        guard let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", arguments: [table]),
              let rewritten = SQLText.settingColumnConstraints(in: sql, column: column, notNull: notNull, default: defaultSQL, addingCheck: check)
        else { throw SchemaError("cannot find column \(column) in the definition of table \(table)") }
        if rewritten == sql { return }
        let version = try Int.fetchOne(db, sql: "PRAGMA schema_version") ?? 0
        try db.execute(sql: "PRAGMA writable_schema = ON")
        do {
            try db.execute(sql: "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", arguments: [rewritten, table])
            try db.execute(sql: "PRAGMA schema_version = \(version + 1)")
        } catch {
            try? db.execute(sql: "PRAGMA writable_schema = OFF")
            throw error
        }
        try db.execute(sql: "PRAGMA writable_schema = OFF")
        db.clearSchemaCache()
        _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM pragma_table_info(?)", arguments: [table])
    }

    func count(_ table: String, where condition: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM \(q(table)) WHERE \(condition)") ?? 0
    }

    func checkExpression(_ expression: String, on table: String) throws {
        _ = try db.makeStatement(sql: "SELECT (\(expression)) FROM \(q(table)) LIMIT 0")
    }

    func keepColumn(table: String, column: String, into kept: String) throws {
        try execute("CREATE TABLE IF NOT EXISTS \(q(kept)) (\"row\" INTEGER PRIMARY KEY, \"value\")")
        try execute("INSERT OR REPLACE INTO \(q(kept)) (\"row\", \"value\") SELECT rowid, \(q(column)) FROM \(q(table)) WHERE \(q(column)) IS NOT NULL")
    }

    func restoreColumn(table: String, column: String, from kept: String) throws {
        try execute("""
            UPDATE \(q(table)) SET \(q(column)) = (SELECT "value" FROM \(q(kept)) WHERE "row" = \(q(table)).rowid)
            WHERE rowid IN (SELECT "row" FROM \(q(kept)))
            """)
        try execute("DROP TABLE \(q(kept))")
    }

    /// Installs the insert trigger and the trigger for updates the old shape makes; returns the trigger for
    /// updates the new shape makes, which the engine creates once existing rows are backfilled (see
    /// `SchemaDialect.installDualShape`).
    ///
    /// No trigger needs a flag to stop ping-pong: an update trigger leaves the row alone when the columns it
    /// would recompute from are already what the other direction computes from the row (`inStep`), which is
    /// exactly the case for a row another trigger or the backfill has just filled. This holds whatever the
    /// connection's `recursive_triggers` setting is.
    func installDualShape(table: String, triggerPrefix: String, assignments: [DualAssignment]) throws -> [String] {
        guard !assignments.isEmpty else { return [] }
        let t = q(table)
        let missing: String = assignments.map { "NEW.\(q($0.target)) IS NULL" }.joined(separator: " OR ")
        let fill: String = assignments.map { "\(q($0.target)) = \($0.valueSQL)" }.joined(separator: ", ")
        try execute("""
            CREATE TRIGGER \(q(triggerPrefix + table + "_ins")) AFTER INSERT ON \(t) WHEN \(missing)
            BEGIN UPDATE \(t) SET \(fill) WHERE rowid = NEW.rowid; END
            """)
        let forward = assignments.filter(\.backfill)
        let reverse = assignments.filter { !$0.backfill }
        if let sql = updateTrigger(table: table, name: triggerPrefix + table + "_upd", direction: forward, opposite: reverse) {
            try execute(sql)
        }
        guard let deferred = updateTrigger(table: table, name: triggerPrefix + table + "_upd_new", direction: reverse, opposite: forward) else {
            return []
        }
        // Created and dropped here so a mistake in it surfaces now, before any row is touched.
        try execute(deferred)
        try execute("DROP TRIGGER \(q(triggerPrefix + table + "_upd_new"))")
        return [deferred]
    }

    /// The AFTER UPDATE trigger that recomputes the targets of `direction` when a write changed their sources
    /// but not them, unless the row is already in step with `opposite`.
    private func updateTrigger(table: String, name: String, direction: [DualAssignment], opposite: [DualAssignment]) -> String? {
        let updatable = direction.filter { !$0.sources.isEmpty }
        guard !updatable.isEmpty else { return nil }
        let t = q(table)
        func value(_ a: DualAssignment) -> String { a.fallback.map { "COALESCE((\(a.expression)), (\($0)))" } ?? "(\(a.expression))" }
        func written(_ a: DualAssignment) -> String {
            let changed: String = a.sources.map { "NEW.\(q($0)) IS NOT OLD.\(q($0))" }.joined(separator: " OR ")
            return "(\(changed)) AND NEW.\(q(a.target)) IS OLD.\(q(a.target))"
        }
        var sources: [String] = []
        for a in updatable { for s in a.sources where !sources.contains(where: { $0.lowercased() == s.lowercased() }) { sources.append(s) } }
        let sets: String
        if updatable.count == 1, let a = updatable.first {
            sets = "\(q(a.target)) = \(value(a))"
        } else {
            sets = updatable.map { a in "\(q(a.target)) = CASE WHEN \(written(a)) THEN \(value(a)) ELSE \(q(a.target)) END" }.joined(separator: ", ")
        }
        // In step: every source that the opposite direction fills holds what it computes from the row, and no
        // other source changed. Evaluated in the body, where bare names are the row as just written.
        let mapped = opposite.filter { b in !b.sources.isEmpty && sources.contains { $0.lowercased() == b.target.lowercased() } }
        var whereSQL = "rowid = NEW.rowid"
        if !mapped.isEmpty {
            let others = sources.filter { s in !mapped.contains { $0.target.lowercased() == s.lowercased() } }
            let inStep: [String] = mapped.map { "\(q($0.target)) IS \(value($0))" } + others.map { "NEW.\(q($0)) IS OLD.\(q($0))" }
            whereSQL += " AND NOT (\(inStep.joined(separator: " AND ")))"
        }
        let when = updatable.map { "(\(written($0)))" }.joined(separator: " OR ")
        return """
            CREATE TRIGGER \(q(name)) AFTER UPDATE OF \(sources.map(q).joined(separator: ", ")) ON \(t) WHEN \(when)
            BEGIN UPDATE \(t) SET \(sets) WHERE \(whereSQL); END
            """
    }

    func createAliasView(_ view: String, of table: String, triggerPrefix: String) throws {
        let cols = try columns(of: table)
        let keys = cols.filter(\.primaryKey).map(\.name)
        let rowKey = keys.isEmpty ? ["rowid"] : keys
        let selected = (keys.isEmpty ? ["rowid"] : []) + cols.map(\.name)
        try execute("CREATE VIEW \(q(view)) AS SELECT \(selected.map(q).joined(separator: ", ")) FROM \(q(table))")
        let match: String = rowKey.map { "\(q($0)) = OLD.\(q($0))" }.joined(separator: " AND ")
        let values: [String] = cols.map { c in c.defaultSQL.map { "COALESCE(NEW.\(q(c.name)), (\($0)))" } ?? "NEW.\(q(c.name))" }
        try execute("""
            CREATE TRIGGER \(q(triggerPrefix + view + "_vins")) INSTEAD OF INSERT ON \(q(view))
            BEGIN INSERT INTO \(q(table)) (\(cols.map { q($0.name) }.joined(separator: ", "))) VALUES (\(values.joined(separator: ", "))); END
            """)
        let assignAll: String = cols.map { "\(q($0.name)) = NEW.\(q($0.name))" }.joined(separator: ", ")
        try execute("""
            CREATE TRIGGER \(q(triggerPrefix + view + "_vupd")) INSTEAD OF UPDATE ON \(q(view))
            BEGIN UPDATE \(q(table)) SET \(assignAll) WHERE \(match); END
            """)
        try execute("""
            CREATE TRIGGER \(q(triggerPrefix + view + "_vdel")) INSTEAD OF DELETE ON \(q(view))
            BEGIN DELETE FROM \(q(table)) WHERE \(match); END
            """)
    }

    func dropMachinery(triggerPrefix: String, views: [String]) throws {
        for view in views where try viewExists(view) { try execute("DROP VIEW \(q(view))") }
        let escaped = triggerPrefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "_", with: "\\_").replacingOccurrences(of: "%", with: "\\%")
        let triggers = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ? ESCAPE '\\'", arguments: [escaped + "%"])
        for trigger in triggers { try execute("DROP TRIGGER IF EXISTS \(q(trigger))") }
    }
}

/// SQLite's own message for an error, without GRDB's decoration.
enum SQLiteMessage {
    static func of(_ error: any Error) -> String {
        if let e = error as? DatabaseError {
            var text = e.message ?? "\(e.resultCode)"
            if e.resultCode == .SQLITE_BUSY || e.resultCode == .SQLITE_LOCKED { text = "database is locked (another connection held it beyond the busy timeout): \(text)" }
            if let sql = e.sql { text += " (in: \(sql.trimmingCharacters(in: .whitespacesAndNewlines).prefix(300)))" }
            return text
        }
        return "\(error)"
    }
}
