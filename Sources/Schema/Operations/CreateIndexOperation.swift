import Manifest

/// `create_index`: built at start on the real table (the new shape's column names are physical columns), in
/// pgroll's column form, unique or not, partial with `predicate`.
struct CreateIndexOperation: SchemaOperation {
    let op: CreateIndex
    var kind: String { "create_index" }

    func validate(_ model: ShapeModel) throws {
        try requireIdentifier(op.name, "index")
        let t = try model.table(op.table)
        for field in op.columns where t.column(field.column) == nil { throw SchemaError("table \(op.table) has no column \(field.column)") }
        if try model.nameTaken(op.name) { throw SchemaError("a table, view or index named \(op.name) already exists") }
        model.setIndex(op.name, table: op.table)
    }

    func start(_ ctx: OperationContext) throws {
        try ctx.dialect.createIndex(name: op.name, table: ctx.physical(op.table), columns: op.columns, unique: op.unique, predicate: op.predicate)
    }

    func complete(_ ctx: OperationContext) throws {}

    func rollback(_ ctx: OperationContext) throws {
        try ctx.dialect.dropIndex(op.name)
    }
}
