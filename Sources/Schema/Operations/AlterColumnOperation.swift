import Manifest

/// `alter_column` with a new name and a changed type, nullability, default, uniqueness or check: the new
/// column sits beside the old one, `up` fills it from old-shape writes and `down` fills the old one from
/// new-shape writes. SQLite cannot show one column name with two definitions, so a change without a new
/// name is refused at validate.
struct AlterColumnOperation: SchemaOperation {
    let op: AlterColumn
    var kind: String { "alter_column" }

    func validate(_ model: ShapeModel) throws {
        guard let newName = op.name else {
            throw SchemaError("""
                SQLite cannot show \(op.table).\(op.column) with two definitions at once (old release and new release \
                share one table); give the altered column a new name, e.g. alter_column: {table: \(op.table), \
                column: \(op.column), name: \(op.column)_new, …, up: …, down: …}, and rename it back in a later migration if needed
                """)
        }
        var t = try model.existingTable(op.table, for: "change")
        try requireIdentifier(newName, "column")
        guard let column = t.column(op.column) else { throw SchemaError("table \(op.table) has no column \(op.column)") }
        if t.column(newName) != nil { throw SchemaError("table \(op.table) already has a column \(newName)") }
        if column.primaryKey { throw SchemaError("cannot alter \(op.table).\(op.column): it is the primary key") }
        if t.indexes.contains(where: { $0.fromConstraint && $0.columns.contains { $0.lowercased() == op.column.lowercased() } }) {
            throw SchemaError("cannot alter \(op.table).\(op.column): it is part of a UNIQUE constraint, which SQLite cannot drop in place")
        }
        if column.notNull && column.defaultSQL == nil && op.down == nil && op.type != nil {
            throw SchemaError("\(op.table).\(op.column) is NOT NULL: give `down` so rows written in the new shape get an old-shape value")
        }
        t.columns = t.columns.map {
            $0.name.lowercased() == op.column.lowercased()
                ? ColumnInfo(name: newName, type: op.type ?? $0.type, notNull: !(op.nullable ?? !$0.notNull),
                             defaultSQL: op.default ?? $0.defaultSQL, primaryKey: false)
                : $0
        }
        model.put(t)
    }

    func start(_ ctx: OperationContext) throws {
        guard let newName = op.name else { throw SchemaError("alter_column needs a new name on SQLite") }
        let table = ctx.physical(op.table)
        guard let column = try ctx.dialect.column(table, op.column) else { throw SchemaError("table \(op.table) has no column \(op.column)") }
        try ctx.dialect.addColumn(table, name: newName, type: op.type ?? column.type, literalDefault: nil, references: nil)
        try ctx.relax(table: table, column: column)
        let up = op.up ?? Identifiers.quote(column.name)
        let down = op.down ?? Identifiers.quote(newName)
        let columns = try ctx.dialect.columns(of: table).map(\.name)
        ctx.plan.add(DualAssignment(target: newName, expression: up,
                                    sources: SQLText.referencedColumns(in: up, among: columns.filter { $0 != newName }),
                                    fallback: op.default ?? column.defaultSQL, backfill: true), on: table)
        ctx.plan.add(DualAssignment(target: column.name, expression: down,
                                    sources: SQLText.referencedColumns(in: down, among: columns.filter { $0 != column.name }),
                                    fallback: column.defaultSQL, backfill: false), on: table)
    }

    func complete(_ ctx: OperationContext) throws {
        guard let newName = op.name else { return }
        let table = ctx.physical(op.table)
        guard let column = try ctx.dialect.column(table, op.column) else { return }
        let moved = try ctx.dropIndexes(table: table, covering: column.name)
        try ctx.dialect.dropColumn(table, column.name)
        for index in moved {
            let columns = index.columns.map { $0.lowercased() == column.name.lowercased() ? newName : $0 }
            try ctx.dialect.createIndex(name: index.name, table: table, columns: columns, unique: index.unique)
        }
        let wasNotNull = try ctx.note("notnull.\(column.name)") == "1"
        try ctx.enforce(table: table, logicalTable: op.table, column: newName, nullable: op.nullable ?? !wasNotNull,
                        default: op.default ?? ctx.note("default.\(column.name)"), unique: op.unique ?? false, check: op.check)
    }

    func rollback(_ ctx: OperationContext) throws {
        guard let newName = op.name else { return }
        let table = ctx.physical(op.table)
        guard try ctx.dialect.column(table, newName) != nil else { return }
        _ = try ctx.dropIndexes(table: table, covering: newName)
        try ctx.dialect.dropColumn(table, newName)
        try ctx.restoreRelaxed(table: table, column: op.column)
    }
}
