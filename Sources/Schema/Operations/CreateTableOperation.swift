import Foundation
import Manifest

/// `create_table`: only the new shape knows the table, so it is created for real at start, with its primary key
/// (one column or several), checks, foreign keys and unique constraints. Rollback keeps the table and its rows
/// aside; starting the same migration again brings them back.
struct CreateTableOperation: SchemaOperation {
    let op: CreateTable
    var kind: String { "create_table" }

    func validate(_ model: ShapeModel) throws {
        try requireIdentifier(op.name, "table")
        for column in op.columns { try requireIdentifier(column.name, "column") }
        if try model.nameTaken(op.name) { throw SchemaError("table \(op.name) already exists") }
        let names = Set(op.columns.map { $0.name.lowercased() })
        var constraintNames: Set<String> = []
        for c in op.constraints {
            try requireIdentifier(c.name, "constraint")
            if !constraintNames.insert(c.name.lowercased()).inserted { throw SchemaError("table \(op.name) declares constraint \(c.name) twice") }
            for column in c.columns where !names.contains(column.lowercased()) {
                throw SchemaError("constraint \(c.name) names column \(column), which table \(op.name) does not have")
            }
        }
        let columnKeys = op.columns.filter(\.primaryKey).map(\.name)
        let tableKeys = op.constraints.filter { $0.type == .primaryKey }
        if tableKeys.count > 1 { throw SchemaError("table \(op.name) declares more than one primary_key constraint") }
        if !columnKeys.isEmpty, !tableKeys.isEmpty {
            throw SchemaError("table \(op.name) declares its primary key both with `pk` and with a primary_key constraint; use one")
        }
        var constraints: [ConstraintInfo] = op.constraints.map {
            ConstraintInfo(name: $0.name, kind: $0.type == .check ? .check : $0.type == .foreignKey ? .foreignKey : $0.type == .primaryKey ? .primaryKey : .unique,
                           columns: $0.columns, item: nil)
        }
        for c in op.columns {
            if let check = c.check { constraints.append(ConstraintInfo(name: check.name ?? "\(op.name)_\(c.name)_check", kind: .check, columns: [c.name], item: nil)) }
            if let r = c.references { constraints.append(ConstraintInfo(name: r.name ?? "\(op.name)_\(c.name)_fkey", kind: .foreignKey, columns: [c.name], item: nil)) }
            if c.unique { constraints.append(ConstraintInfo(name: "\(op.name)_\(c.name)_key", kind: .unique, columns: [c.name], item: nil)) }
        }
        let keys = Set((columnKeys + tableKeys.flatMap(\.columns)).map { $0.lowercased() })
        model.put(ShapeModel.Table(name: op.name, columns: op.columns.map {
            ColumnInfo(name: $0.name, type: $0.type, notNull: !$0.nullable || keys.contains($0.name.lowercased()), defaultSQL: $0.default,
                       primaryKey: keys.contains($0.name.lowercased()))
        }, createdHere: true, hasRowid: true, indexes: [], constraints: constraints))
        for c in constraints where c.kind == .unique { model.setIndex(c.name, table: op.name) }
    }

    func start(_ ctx: OperationContext) throws {
        if ctx.restoreKept, try ctx.dialect.tableExists(ctx.keptTable) {
            try ctx.dialect.renameTable(ctx.keptTable, to: op.name)
            try ctx.dialect.createUniqueIndexes(op)
        } else {
            try ctx.dialect.createTable(op)
        }
    }

    func complete(_ ctx: OperationContext) throws {}

    func rollback(_ ctx: OperationContext) throws {
        guard try ctx.dialect.tableExists(op.name) else { return }
        if try ctx.dialect.tableExists(ctx.keptTable) {
            try ctx.dialect.renameTable(ctx.keptTable, to: "\(ctx.keptTable)_\(Int(Date().timeIntervalSince1970))")
        }
        // Named indexes would keep their names on the kept table and stand in the way of a later create.
        for index in try ctx.dialect.indexes(of: op.name) where !index.fromConstraint { try ctx.dialect.dropIndex(index.name) }
        try ctx.dialect.renameTable(op.name, to: ctx.keptTable)
    }
}
