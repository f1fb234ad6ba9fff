import Manifest

/// `drop_table`: the old shape keeps using the table until complete drops it.
struct DropTableOperation: SchemaOperation {
    let op: DropTable
    var kind: String { "drop_table" }

    func validate(_ model: ShapeModel) throws {
        let t = try model.table(op.name)
        if t.createdHere { throw SchemaError("table \(op.name) is created by this same migration") }
        model.remove(op.name)
    }

    func start(_ ctx: OperationContext) throws {
        guard try ctx.dialect.tableExists(ctx.physical(op.name)) else { throw SchemaError("table \(op.name) does not exist") }
    }

    func complete(_ ctx: OperationContext) throws {
        let table = ctx.physical(op.name)
        if try ctx.dialect.tableExists(table) { try ctx.dialect.dropTable(table) }
    }

    func rollback(_ ctx: OperationContext) throws {}
}
