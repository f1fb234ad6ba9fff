import Manifest

/// `drop_column`: the column stays in the real table for the old shape, its NOT NULL and DEFAULT lifted so
/// new-shape inserts succeed; `down` gives it a value for rows the new shape writes. Complete drops it.
struct DropColumnOperation: SchemaOperation {
    let op: DropColumn
    var kind: String { "drop_column" }

    func validate(_ model: ShapeModel) throws {
        var t = try model.existingTable(op.table, for: "change")
        guard let column = t.column(op.column) else { throw SchemaError("table \(op.table) has no column \(op.column)") }
        if column.primaryKey { throw SchemaError("cannot drop \(op.table).\(op.column): it is the primary key") }
        if t.indexes.contains(where: { $0.fromConstraint && $0.columns.contains { $0.lowercased() == op.column.lowercased() } }) {
            throw SchemaError("cannot drop \(op.table).\(op.column): it is part of a UNIQUE constraint, which SQLite cannot drop in place")
        }
        if column.notNull && column.defaultSQL == nil && op.down == nil {
            throw SchemaError("\(op.table).\(op.column) is NOT NULL without a default: give `down` so rows written in the new shape still have a value in the old shape")
        }
        t.columns.removeAll { $0.name.lowercased() == op.column.lowercased() }
        model.put(t)
    }

    func start(_ ctx: OperationContext) throws {
        let table = ctx.physical(op.table)
        let columns = try ctx.dialect.columns(of: table)
        guard let column = columns.first(where: { $0.name.lowercased() == op.column.lowercased() }) else {
            throw SchemaError("table \(op.table) has no column \(op.column)")
        }
        try ctx.relax(table: table, column: column)
        if let expression = op.down ?? column.defaultSQL {
            let sources = op.down.map { SQLText.referencedColumns(in: $0, among: columns.map(\.name).filter { $0 != column.name }) } ?? []
            ctx.plan.add(DualAssignment(target: column.name, expression: expression, sources: sources,
                                        fallback: op.down == nil ? nil : column.defaultSQL, backfill: false,
                                        requiredInOldShape: column.notNull), on: table)
        }
    }

    func complete(_ ctx: OperationContext) throws {
        let table = ctx.physical(op.table)
        guard try ctx.dialect.column(table, op.column) != nil else { return }
        _ = try ctx.dropIndexes(table: table, covering: op.column)
        try ctx.dialect.dropColumn(table, op.column)
    }

    func rollback(_ ctx: OperationContext) throws {
        let table = ctx.physical(op.table)
        guard let column = try ctx.dialect.column(table, op.column) else { return }
        try ctx.restoreRelaxed(table: table, column: column.name)
    }
}
