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

/// A named constraint of a table.
struct ConstraintInfo: Sendable, Hashable {
    enum Kind: Sendable, Hashable { case check, foreignKey, primaryKey, unique }
    var name: String
    var kind: Kind
    var columns: [String]
    /// The table constraint's text; nil for a unique index.
    var item: String?
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
    /// The target is NOT NULL in the old shape: `expression` must not give NULL (checked against the rows at start).
    var requiredInOldShape = false

    var valueSQL: String {
        let targetSQL = Identifiers.quote(target)
        if let fallback { return "COALESCE(\(targetSQL), (\(expression)), (\(fallback)))" }
        return "COALESCE(\(targetSQL), (\(expression)))"
    }
}

/// A database family the engine can run migrations on: what it refuses outright, and how it opens a session
/// on one connection. `SQLiteDialect` is SQLite's; a PostgreSQL dialect fills the same boundary.
public protocol SchemaDialect: Sendable {
    /// The database's name, as messages say it ("SQLite").
    var name: String { get }
    /// Constructs of `migration` this database cannot express, found without a database (PostgreSQL-only SQL on SQLite, ...).
    func unsupported(in migration: Migration) -> [UnsupportedConstruct]
}

/// One construct a dialect refuses: where it is (operation index and field path) and why.
public struct UnsupportedConstruct: Sendable, Hashable, CustomStringConvertible {
    public var operationIndex: Int
    /// Dotted path of the field inside the operation (`up`, `columns[0].type`), nil for the operation as a whole.
    public var field: String?
    public var message: String

    public init(operationIndex: Int, field: String?, message: String) {
        self.operationIndex = operationIndex
        self.field = field
        self.message = message
    }

    public var description: String { "operations[\(operationIndex)]\(field.map { ".\($0)" } ?? ""): \(message)" }
}

/// What a database must offer the operations on one connection: introspection, DDL, the dual-shape machinery and
/// kept data. `SQLiteSession` fills it for SQLite; a PostgreSQL dialect fills the same boundary with schemas and views.
protocol DialectSession: AnyObject {
    /// The database's name, for messages.
    var databaseName: String { get }
    /// Refuses what this database cannot do with a table that exists (e.g. SQLite's WITHOUT ROWID tables).
    func checkDualShape(_ table: String) throws
    func tableExists(_ name: String) throws -> Bool
    func viewExists(_ name: String) throws -> Bool
    /// The table an index belongs to; nil when there is no such index.
    func tableOfIndex(_ name: String) throws -> String?
    func columns(of table: String) throws -> [ColumnInfo]
    func indexes(of table: String) throws -> [IndexInfo]
    func hasRowid(_ table: String) throws -> Bool

    func createTable(_ op: CreateTable) throws
    /// The unique indexes standing for `op`'s unique constraints (created by `createTable` too).
    func createUniqueIndexes(_ op: CreateTable) throws
    func dropTable(_ table: String) throws
    func renameTable(_ from: String, to: String) throws
    /// Adds a column with no constraint but its type, a literal default and a reference.
    func addColumn(_ table: String, name: String, type: String, literalDefault: String?, references: ForeignKeyReference?) throws
    /// Adds a column computed from the row (pgroll's `generated.expression`).
    func addGeneratedColumn(_ table: String, name: String, type: String, expression: String) throws
    func dropColumn(_ table: String, _ column: String) throws
    /// Drops a column the migration being rolled back added at start (so the table's last one). Where the
    /// database can, only the declaration goes and the rows' now undeclared values are cleared later in short
    /// batches, so no writer waits for a whole-table rewrite; otherwise the same as `dropColumn`.
    func dropAddedColumn(_ table: String, _ column: String) throws
    func renameColumn(_ table: String, from: String, to: String) throws
    func createIndex(name: String, table: String, columns: [String], unique: Bool) throws
    func createIndex(name: String, table: String, columns: [IndexField], unique: Bool, predicate: String?) throws
    func dropIndex(_ name: String) throws
    /// Re-declares a column's NOT NULL, DEFAULT and an added CHECK in place, without rewriting rows.
    func setColumnConstraints(table: String, column: String, notNull: Bool, default: String?, addingCheck: String?) throws
    func count(_ table: String, where condition: String) throws -> Int
    /// The declaring SQL of a table or an index, as stored.
    func tableSQL(_ table: String) throws -> String?
    func indexSQL(_ name: String) throws -> String?
    /// Replaces a table's declaring SQL in place (no row is rewritten); for constraint and default changes only.
    func rewriteTableSQL(_ table: String, _ sql: String) throws
    /// Named check, foreign key and primary key constraints, and unique indexes (pgroll's unique constraints).
    func namedConstraints(of table: String) throws -> [ConstraintInfo]
    /// Declares a table constraint (`CONSTRAINT name CHECK (...)`, `... FOREIGN KEY ...`) in place.
    func addTableConstraint(_ table: String, item: String) throws
    /// Removes the table constraints for which `matches` holds and returns their text.
    func removeTableConstraints(_ table: String, where matches: (String) -> Bool) throws -> [String]
    func renameTableConstraint(_ table: String, from: String, to: String) throws
    /// Declares `CHECK (expression)` under `name`, in place.
    func addCheckConstraint(_ table: String, name: String, expression: String) throws
    /// Declares a foreign key under `name`, in place.
    func addForeignKey(_ table: String, name: String, columns: [String], references: TableForeignKeyReference, deferrable: Bool,
                       initiallyDeferred: Bool) throws
    /// Fails with the database's message when `expression` does not compile over `table`'s rows.
    func checkExpression(_ expression: String, on table: String) throws
    func execute(_ sql: String) throws

    /// Copies the non-NULL values of a column into a kept-aside table keyed by the row's key (unless `copying` is
    /// false: `mirrorKept` and `copyKept` did it in batches), with triggers that forget deleted rows.
    func keepColumn(table: String, column: String, into kept: String, copying: Bool) throws
    /// Creates the kept-aside table and triggers (named with `triggerPrefix`) copying every later write of the
    /// column into it, so that existing rows can then be copied in batches (`copyKept`) while writers go on.
    func mirrorKept(table: String, column: String, into kept: String, triggerPrefix: String) throws
    /// Copies the non-NULL values of the column in a rowid range into the kept-aside table.
    func copyKept(table: String, column: String, into kept: String, rowids: ClosedRange<Int64>) throws
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

extension DialectSession {
    /// Indexes (not constraint ones) that cover `column`.
    func droppableIndexes(of table: String, covering column: String) throws -> [IndexInfo] {
        try indexes(of: table).filter { !$0.fromConstraint && $0.columns.contains { $0.lowercased() == column.lowercased() } }
    }

    func column(_ table: String, _ name: String) throws -> ColumnInfo? {
        try columns(of: table).first { $0.name.lowercased() == name.lowercased() }
    }
}
