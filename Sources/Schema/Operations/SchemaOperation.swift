import Manifest

/// One migration operation, in pgroll's manner: it checks itself against the shape it will change, then
/// expands (start), contracts (complete) or undoes (rollback) through a dialect.
protocol SchemaOperation: Sendable {
    var kind: String { get }
    /// Checks the operation against `model` (the new shape so far) and applies it to the model.
    func validate(_ model: ShapeModel) throws
    /// Makes the new shape available beside the old one; registers what the triggers and backfill must do.
    func start(_ ctx: OperationContext) throws
    /// Removes the old shape.
    func complete(_ ctx: OperationContext) throws
    /// Removes the new shape, keeping aside what only it could hold.
    func rollback(_ ctx: OperationContext) throws
}

enum Implementations {
    /// The engine's implementation of each operation of a migration. A constraint that create_constraint adds to a
    /// table created earlier in the same migration is declared by that create_table (SQLite cannot add a primary
    /// key in place, and a new table has no old shape to keep in step).
    static func of(_ ops: [Manifest.Operation]) -> [any SchemaOperation] {
        var folded: [Int: [TableConstraint]] = [:]
        var foldedInto: [Int: Int] = [:]
        for (j, op) in ops.enumerated() {
            guard case .createConstraint(let c) = op else { continue }
            let creator = ops[..<j].lastIndex { if case .createTable(let t) = $0 { t.name.lowercased() == c.table.lowercased() } else { false } }
            guard let creator else { continue }
            folded[creator, default: []].append(TableConstraint(
                name: c.name, type: c.type, columns: c.columns, check: c.check,
                references: c.references, includeColumns: c.includeColumns, storageParameters: c.storageParameters, tablespace: c.tablespace))
            foldedInto[j] = creator
        }
        return ops.enumerated().map { (i, op) -> any SchemaOperation in
            switch op {
            case .createTable(var o):
                o.constraints += folded[i] ?? []
                return CreateTableOperation(op: o)
            case .dropTable(let o): return DropTableOperation(op: o)
            case .renameTable(let o): return RenameTableOperation(op: o)
            case .addColumn(let o): return AddColumnOperation(op: o)
            case .dropColumn(let o): return DropColumnOperation(op: o)
            case .renameColumn(let o): return RenameColumnOperation(table: o.table, from: o.from, to: o.to)
            case .alterColumn(let o):
                if let name = o.name, !o.changesShape, o.up == nil, o.down == nil {
                    return RenameColumnOperation(table: o.table, from: o.column, to: name, kind: "alter_column")
                }
                return AlterColumnOperation(op: o)
            case .createIndex(let o): return CreateIndexOperation(op: o)
            case .dropIndex(let o): return DropIndexOperation(op: o)
            case .createConstraint(let o):
                if let creator = foldedInto[i] { return FoldedConstraintOperation(op: o, into: creator) }
                return CreateConstraintOperation(op: o)
            case .dropConstraint(let o): return DropConstraintOperation(table: o.table, name: o.name, down: [:], singleDown: o.down, kind: "drop_constraint")
            case .dropMultiColumnConstraint(let o):
                return DropConstraintOperation(table: o.table, name: o.name, down: o.down, singleDown: nil, kind: "drop_multicolumn_constraint")
            case .renameConstraint(let o): return RenameConstraintOperation(op: o)
            case .setReplicaIdentity(let o): return SetReplicaIdentityOperation(op: o)
            case .sql(let o): return RawSQLOperation(op: o)
            }
        }
    }
}

/// What the expand phase must install once every operation has started.
final class ExpandPlan {
    private(set) var tables: [String] = []
    private(set) var assignments: [String: [DualAssignment]] = [:]
    /// New-name views over renamed tables: (view, physical table).
    var aliasViews: [(view: String, table: String)] = []

    /// The operation now starting; assignments are attributed to it.
    var currentOperation = 0

    func add(_ assignment: DualAssignment, on table: String) {
        if assignments[table] == nil { tables.append(table) }
        var attributed = assignment
        attributed.origin = currentOperation
        assignments[table, default: []].append(attributed)
    }
}

/// Persistent per-operation notes (e.g. a column's original constraints), kept until the migration ends.
protocol OperationStateStore: AnyObject {
    func value(_ key: String) throws -> String?
    func set(_ key: String, _ value: String?) throws
}

/// Everything an operation sees while it runs one phase.
final class OperationContext {
    let dialect: any DialectSession
    let migration: String
    let index: Int
    let plan: ExpandPlan
    /// True when start should bring back what a rollback of this same migration kept aside.
    let restoreKept: Bool
    /// Set during a rollback: NOT NULL of old-shape columns is re-declared after the transaction (`NotNullRestore`).
    let notNullLater: NotNullDeferral?
    private let tableNames: [String: String]
    private let store: any OperationStateStore

    init(dialect: any DialectSession, migration: String, index: Int, tableNames: [String: String], plan: ExpandPlan,
         restoreKept: Bool, store: any OperationStateStore, notNullLater: NotNullDeferral? = nil) {
        self.notNullLater = notNullLater
        self.dialect = dialect
        self.migration = migration
        self.index = index
        self.tableNames = tableNames
        self.plan = plan
        self.restoreKept = restoreKept
        self.store = store
    }

    /// The physical table behind a table name of the new shape (a table renamed in this migration is still
    /// under its old name until complete).
    func physical(_ table: String) -> String { tableNames[table.lowercased()] ?? table }

    /// Where rollback keeps aside what only the new shape could hold.
    var keptTable: String { "_teal_kept_\(migration)_\(index)" }

    func note(_ key: String) throws -> String? { try store.value("\(index).\(key)") }
    func setNote(_ key: String, _ value: String?) throws { try store.set("\(index).\(key)", value) }

    /// Records a column's NOT NULL and DEFAULT, then lifts them so rows written in the shape without the
    /// column can be inserted; triggers give the column its value right after.
    func relax(table: String, column: ColumnInfo) throws {
        try setNote("notnull.\(column.name)", column.notNull ? "1" : "0")
        try setNote("default.\(column.name)", column.defaultSQL)
        if column.notNull || column.defaultSQL != nil {
            try dialect.setColumnConstraints(table: table, column: column.name, notNull: false, default: nil, addingCheck: nil)
        }
    }

    /// Puts back what `relax` lifted, after checking the rows allow it. In a rollback, NOT NULL is left to
    /// `NotNullRestore`, whose check of the rows runs outside the write lock.
    func restoreRelaxed(table: String, column: String, recordedAs recorded: String? = nil) throws {
        let notNull = try note("notnull.\(recorded ?? column)") == "1"
        let defaultSQL = try note("default.\(recorded ?? column)")
        if notNull, let later = notNullLater {
            later.columns.append((table, column))
            if defaultSQL != nil {
                try dialect.setColumnConstraints(table: table, column: column, notNull: false, default: defaultSQL, addingCheck: nil)
            }
            return
        }
        if notNull {
            let missing = try dialect.count(table, where: "\(Identifiers.quote(column)) IS NULL")
            if missing > 0 {
                throw SchemaError("\(missing) row(s) of \(table) have no value for \(column), which is NOT NULL in the old shape")
            }
        }
        if notNull || defaultSQL != nil {
            try dialect.setColumnConstraints(table: table, column: column, notNull: notNull, default: defaultSQL, addingCheck: nil)
        }
    }

    /// Declares the final constraints of a column the new shape introduced, after checking the rows meet them.
    /// `unique` is the name of the unique index to create, if any.
    func enforce(table: String, logicalTable: String, column: String, nullable: Bool, default defaultSQL: String?,
                 unique: String?, check: CheckConstraint?, references: ForeignKeyReference? = nil) throws {
        let c = Identifiers.quote(column)
        if !nullable {
            let n = try dialect.count(table, where: "\(c) IS NULL")
            if n > 0 { throw SchemaError("\(n) row(s) of \(logicalTable) have NULL in \(column), declared NOT NULL; fix the rows or roll back") }
        }
        if let check {
            let n = try dialect.count(table, where: "NOT (\(check.constraint))")
            if n > 0 { throw SchemaError("\(n) row(s) of \(logicalTable) fail the check (\(check.constraint)) on \(column); fix the rows or roll back") }
        }
        if !nullable || defaultSQL != nil {
            try dialect.setColumnConstraints(table: table, column: column, notNull: !nullable, default: defaultSQL, addingCheck: nil)
        }
        if let check {
            try dialect.addCheckConstraint(table, name: check.name ?? "\(logicalTable)_\(column)_check", expression: check.constraint)
        }
        if let references {
            try dialect.addForeignKey(table, name: references.name ?? "\(logicalTable)_\(column)_fkey", columns: [column],
                                      references: TableForeignKeyReference(table: references.table, columns: references.column.map { [$0] } ?? [],
                                                                           onDelete: references.onDelete, onUpdate: references.onUpdate,
                                                                           matchType: references.matchType),
                                      deferrable: references.deferrable, initiallyDeferred: references.initiallyDeferred)
        }
        if let unique {
            try dialect.createIndex(name: unique, table: table, columns: [column], unique: true)
        }
    }

    /// Drops the plain indexes covering `column` and returns them, to recreate later.
    func dropIndexes(table: String, covering column: String) throws -> [IndexInfo] {
        let found = try dialect.droppableIndexes(of: table, covering: column)
        for index in found { try dialect.dropIndex(index.name) }
        return found
    }
}

/// The new shape, as validation builds it operation by operation from the database's current shape.
final class ShapeModel {
    struct Table {
        var name: String
        var columns: [ColumnInfo]
        var createdHere: Bool
        var hasRowid: Bool
        var indexes: [IndexInfo]
        /// Named constraints (checks, foreign keys, unique constraints) as the new shape has them so far.
        var constraints: [ConstraintInfo] = []

        func column(_ name: String) -> ColumnInfo? { columns.first { $0.name.lowercased() == name.lowercased() } }
        func constraint(_ name: String) -> ConstraintInfo? { constraints.first { $0.name.lowercased() == name.lowercased() } }
    }

    private let dialect: any DialectSession
    private var tables: [String: Table] = [:]
    private var gone: Set<String> = []
    private var indexes: [String: String?] = [:]

    init(dialect: any DialectSession) { self.dialect = dialect }

    /// The table as the new shape has it so far.
    func table(_ name: String) throws -> Table {
        let key = name.lowercased()
        if let t = tables[key] { return t }
        let exists = try dialect.tableExists(name)
        if gone.contains(key) || !exists {
            throw SchemaError("table \(name) does not exist")
        }
        let t = Table(name: name, columns: try dialect.columns(of: name), createdHere: false,
                      hasRowid: try dialect.hasRowid(name), indexes: try dialect.indexes(of: name),
                      constraints: try dialect.namedConstraints(of: name))
        tables[key] = t
        return t
    }

    /// A table the dual-shape machinery can work on: existing, not created in this migration, with rowids.
    func existingTable(_ name: String, for what: String) throws -> Table {
        let t = try table(name)
        if t.createdHere { throw SchemaError("table \(name) is created by this migration; declare the \(what) in its create_table instead") }
        try dialect.checkDualShape(t.name)
        return t
    }

    func nameTaken(_ name: String) throws -> Bool {
        let key = name.lowercased()
        if tables[key] != nil { return true }
        if let owner = indexes[key] { return owner != nil }
        if gone.contains(key) { return false }
        if try dialect.tableExists(name) || dialect.viewExists(name) { return true }
        return try dialect.tableOfIndex(name) != nil
    }

    func put(_ table: Table) { tables[table.name.lowercased()] = table; gone.remove(table.name.lowercased()) }

    func remove(_ name: String) { tables[name.lowercased()] = nil; gone.insert(name.lowercased()) }

    func indexTable(_ name: String) throws -> String? {
        if let owner = indexes[name.lowercased()] { return owner }
        return try dialect.tableOfIndex(name)
    }

    func setIndex(_ name: String, table: String?) { indexes[name.lowercased()] = .some(table) }
}

func requireIdentifier(_ name: String, _ what: String) throws {
    guard Identifiers.isValidSQLIdentifier(name) else { throw SchemaError("\(what) '\(name)' is not a valid SQL identifier") }
    guard !name.lowercased().hasPrefix("_teal_") else { throw SchemaError("\(what) '\(name)': names starting with _teal_ are reserved") }
}
