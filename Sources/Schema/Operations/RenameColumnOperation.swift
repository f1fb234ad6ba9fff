import Manifest

/// `rename_column` (and an `alter_column` that only renames): the new name is a physical copy kept in step
/// both ways; complete drops the copy and renames the original in place, so its indexes and constraints stay.
struct RenameColumnOperation: SchemaOperation {
    let table: String
    let from: String
    let to: String
    var kind: String = "rename_column"

    func validate(_ model: ShapeModel) throws {
        var t = try model.existingTable(table, for: "change")
        try requireIdentifier(to, "column")
        guard let column = t.column(from) else { throw SchemaError("table \(table) has no column \(from)") }
        if t.column(to) != nil { throw SchemaError("table \(table) already has a column \(to)") }
        if column.primaryKey {
            throw SchemaError("cannot rename \(table).\(from) while both shapes run: it is the primary key, which SQLite cannot hold under two names; add a new column instead")
        }
        t.columns = t.columns.map { $0.name.lowercased() == from.lowercased() ? ColumnInfo(name: to, type: $0.type, notNull: $0.notNull, defaultSQL: $0.defaultSQL, primaryKey: false) : $0 }
        model.put(t)
    }

    func start(_ ctx: OperationContext) throws {
        let physical = ctx.physical(table)
        guard let column = try ctx.dialect.column(physical, from) else { throw SchemaError("table \(table) has no column \(from)") }
        try ctx.dialect.addColumn(physical, name: to, type: column.type, literalDefault: nil, references: nil)
        try ctx.relax(table: physical, column: column)
        ctx.plan.add(DualAssignment(target: to, expression: Identifiers.quote(column.name), sources: [column.name],
                                    fallback: column.defaultSQL, backfill: true), on: physical)
        ctx.plan.add(DualAssignment(target: column.name, expression: Identifiers.quote(to), sources: [to],
                                    fallback: column.defaultSQL, backfill: false), on: physical)
    }

    func complete(_ ctx: OperationContext) throws {
        let physical = ctx.physical(table)
        guard try ctx.dialect.column(physical, from) != nil else { return }
        let onCopy = try ctx.dropIndexes(table: physical, covering: to)
        try ctx.dialect.dropColumn(physical, to)
        try ctx.dialect.renameColumn(physical, from: from, to: to)
        try ctx.restoreRelaxed(table: physical, column: to, recordedAs: from)
        for index in onCopy {
            try ctx.dialect.createIndex(name: index.name, table: physical, columns: index.columns, unique: index.unique)
        }
    }

    func rollback(_ ctx: OperationContext) throws {
        let physical = ctx.physical(table)
        guard try ctx.dialect.column(physical, to) != nil else { return }
        _ = try ctx.dropIndexes(table: physical, covering: to)
        try ctx.dialect.dropAddedColumn(physical, to)
        try ctx.restoreRelaxed(table: physical, column: from)
    }
}
