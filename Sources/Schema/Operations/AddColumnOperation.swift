import Manifest

/// `add_column`: the column is added to the real table without its constraints; old-shape writes get it from
/// `up`; the constraints are declared at complete. Rollback keeps aside values that `up` cannot recompute.
struct AddColumnOperation: SchemaOperation {
    let op: AddColumn
    var kind: String { "add_column" }

    private var literalDefault: String? { op.column.default.flatMap { SQLText.isLiteral($0) ? $0 : nil } }
    private var computedDefault: String? { op.column.default.flatMap { SQLText.isLiteral($0) ? nil : $0 } }

    func validate(_ model: ShapeModel) throws {
        var t = try model.existingTable(op.table, for: "column \(op.column.name)")
        try requireIdentifier(op.column.name, "column")
        if t.column(op.column.name) != nil { throw SchemaError("table \(op.table) already has a column \(op.column.name)") }
        if !op.column.nullable && op.column.default == nil && op.up == nil && op.column.generated == nil {
            throw SchemaError("column \(op.column.name) is NOT NULL: give `up` (or a default) so existing rows and old-shape writes get a value")
        }
        t.columns.append(ColumnInfo(name: op.column.name, type: op.column.type, notNull: !op.column.nullable,
                                    defaultSQL: op.column.default, primaryKey: false))
        if let check = op.column.check {
            t.constraints.append(ConstraintInfo(name: check.name ?? "\(op.table)_\(op.column.name)_check", kind: .check, columns: [op.column.name], item: nil))
        }
        if op.column.unique {
            t.constraints.append(ConstraintInfo(name: "\(op.table)_\(op.column.name)_key", kind: .unique, columns: [op.column.name], item: nil))
        }
        model.put(t)
    }

    func start(_ ctx: OperationContext) throws {
        let table = ctx.physical(op.table)
        let sourceColumns = try ctx.dialect.columns(of: table).map(\.name)
        if let expression = op.column.generated?.expression {
            try ctx.dialect.addGeneratedColumn(table, name: op.column.name, type: op.column.type, expression: expression)
            return
        }
        try ctx.dialect.addColumn(table, name: op.column.name, type: op.column.type, literalDefault: literalDefault,
                                  references: op.column.references)
        if ctx.restoreKept, try ctx.dialect.tableExists(ctx.keptTable) {
            try ctx.dialect.restoreColumn(table: table, column: op.column.name, from: ctx.keptTable)
        }
        if let expression = op.up ?? computedDefault {
            ctx.plan.add(DualAssignment(target: op.column.name, expression: expression,
                                        sources: op.up.map { SQLText.referencedColumns(in: $0, among: sourceColumns) } ?? [],
                                        fallback: op.up == nil ? nil : computedDefault, backfill: true), on: table)
        }
    }

    func complete(_ ctx: OperationContext) throws {
        if op.column.generated != nil { return }
        try ctx.enforce(table: ctx.physical(op.table), logicalTable: op.table, column: op.column.name, nullable: op.column.nullable,
                        default: op.column.default, unique: op.column.unique ? "\(op.table)_\(op.column.name)_key" : nil,
                        check: op.column.check)
    }

    func rollback(_ ctx: OperationContext) throws {
        let table = ctx.physical(op.table)
        guard try ctx.dialect.column(table, op.column.name) != nil else { return }
        if op.up == nil && op.column.generated == nil {
            // Copied already, in batches, before the rollback's transaction (`SchemaEngine.keepAsideInBatches`).
            let copied = try ctx.note(SchemaEngine.keptInBatchesNote) == "1"
            try ctx.dialect.keepColumn(table: table, column: op.column.name, into: ctx.keptTable, copying: !copied)
        }
        _ = try ctx.dropIndexes(table: table, covering: op.column.name)
        try ctx.dialect.dropAddedColumn(table, op.column.name)
    }
}
