import Foundation
import Manifest

/// `create_table`: only the new shape knows the table, so it is created for real at start. Rollback keeps
/// the table and its rows aside; starting the same migration again brings them back.
struct CreateTableOperation: SchemaOperation {
    let op: CreateTable
    var kind: String { "create_table" }

    func validate(_ model: ShapeModel) throws {
        try requireIdentifier(op.table, "table")
        for column in op.columns { try requireIdentifier(column.name, "column") }
        if try model.nameTaken(op.table) { throw SchemaError("table \(op.table) already exists") }
        if op.columns.filter(\.primaryKey).count > 1 {
            throw SchemaError("table \(op.table) declares primary_key on several columns; SQLite needs a table constraint for that, use one key column")
        }
        model.put(ShapeModel.Table(name: op.table, columns: op.columns.map {
            ColumnInfo(name: $0.name, type: $0.type, notNull: !$0.nullable, defaultSQL: $0.default, primaryKey: $0.primaryKey)
        }, createdHere: true, hasRowid: true, indexes: []))
    }

    func start(_ ctx: OperationContext) throws {
        if ctx.restoreKept, try ctx.dialect.tableExists(ctx.keptTable) {
            try ctx.dialect.renameTable(ctx.keptTable, to: op.table)
        } else {
            try ctx.dialect.createTable(op.table, columns: op.columns)
        }
    }

    func complete(_ ctx: OperationContext) throws {}

    func rollback(_ ctx: OperationContext) throws {
        guard try ctx.dialect.tableExists(op.table) else { return }
        if try ctx.dialect.tableExists(ctx.keptTable) {
            try ctx.dialect.renameTable(ctx.keptTable, to: "\(ctx.keptTable)_\(Int(Date().timeIntervalSince1970))")
        }
        try ctx.dialect.renameTable(op.table, to: ctx.keptTable)
    }
}
