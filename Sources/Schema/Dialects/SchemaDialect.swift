import Manifest

/// A column as the database reports it.
struct ColumnInfo: Sendable, Hashable {
    var name: String
    var type: String
    var notNull: Bool
    /// The default's SQL text, as declared.
    var defaultSQL: String?
    var primaryKey: Bool
}

/// An index as the database reports it.
struct IndexInfo: Sendable, Hashable {
    var name: String
    var unique: Bool
    /// True for indexes a constraint created (UNIQUE or PRIMARY KEY), which cannot be dropped on their own.
    var fromConstraint: Bool
    var columns: [String]
    /// The declaring SQL, nil for constraint indexes.
    var sql: String?
}

/// One value kept in step between the two shapes: when a row is written in the shape that has `sources`,
/// `target` is set to `expression` (evaluated over the row), falling back to `fallback` when that is NULL.
struct DualAssignment: Sendable, Hashable {
    var target: String
    var expression: String
    var sources: [String]
    var fallback: String?
    /// True when existing rows need this value computed (the target is a column this migration added).
    var backfill: Bool
    /// Index of the operation that declared it, for error messages.
    var origin: Int = 0

    var valueSQL: String {
        let targetSQL = Identifiers.quote(target)
        if let fallback { return "COALESCE(\(targetSQL), (\(expression)), (\(fallback)))" }
        return "COALESCE(\(targetSQL), (\(expression)))"
    }
}

/// What a database must offer the operations: introspection, DDL, the dual-shape machinery and kept data.
/// `SQLiteDialect` fills it for SQLite; a PostgreSQL dialect fills the same boundary with schemas and views.
protocol SchemaDialect: AnyObject {
    func tableExists(_ name: String) throws -> Bool
    func viewExists(_ name: String) throws -> Bool
    /// The table an index belongs to; nil when there is no such index.
    func tableOfIndex(_ name: String) throws -> String?
    func columns(of table: String) throws -> [ColumnInfo]
    func indexes(of table: String) throws -> [IndexInfo]
    func hasRowid(_ table: String) throws -> Bool

    func createTable(_ table: String, columns: [ColumnDefinition]) throws
    func dropTable(_ table: String) throws
    func renameTable(_ from: String, to: String) throws
    /// Adds a column with no constraint but its type, a literal default and a reference.
    func addColumn(_ table: String, name: String, type: String, literalDefault: String?, references: String?) throws
    func dropColumn(_ table: String, _ column: String) throws
    func renameColumn(_ table: String, from: String, to: String) throws
    func createIndex(name: String, table: String, columns: [String], unique: Bool) throws
    func dropIndex(_ name: String) throws
    /// Re-declares a column's NOT NULL, DEFAULT and an added CHECK in place, without rewriting rows.
    func setColumnConstraints(table: String, column: String, notNull: Bool, default: String?, addingCheck: String?) throws
    func count(_ table: String, where condition: String) throws -> Int
    /// Fails with the database's message when `expression` does not compile over `table`'s rows.
    func checkExpression(_ expression: String, on table: String) throws
    func execute(_ sql: String) throws

    /// Copies the non-NULL values of a column into a kept-aside table keyed by rowid.
    func keepColumn(table: String, column: String, into kept: String) throws
    /// Writes kept values back into the column, then drops the kept table.
    func restoreColumn(table: String, column: String, from kept: String) throws

    /// Installs what keeps both shapes of `table` in step for inserts in either shape and updates in the old
    /// shape. Returns statements to run once existing rows are backfilled, completing it for updates in the
    /// new shape (kept out of the way of the backfill, whose writes they would otherwise have to inspect).
    func installDualShape(table: String, triggerPrefix: String, assignments: [DualAssignment]) throws -> [String]
    /// Exposes `table` under a second name, readable and writable.
    func createAliasView(_ view: String, of table: String, triggerPrefix: String) throws
    /// Drops every trigger whose name starts with `prefix`, and the given views.
    func dropMachinery(triggerPrefix: String, views: [String]) throws
}

extension SchemaDialect {
    /// Indexes (not constraint ones) that cover `column`.
    func droppableIndexes(of table: String, covering column: String) throws -> [IndexInfo] {
        try indexes(of: table).filter { !$0.fromConstraint && $0.columns.contains { $0.lowercased() == column.lowercased() } }
    }

    func column(_ table: String, _ name: String) throws -> ColumnInfo? {
        try columns(of: table).first { $0.name.lowercased() == name.lowercased() }
    }
}
