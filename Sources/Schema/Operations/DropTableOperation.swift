import Manifest

/// `drop_table`: the old shape keeps using the table until complete drops it.
struct DropTableOperation: SchemaOperation {
    let op: DropTable
    var kind: String { "drop_table" }

    func validate(_ model: ShapeModel) throws {
        let t = try model.table(op.table)
        if t.createdHere { throw SchemaError("table \(op.table) is created by this same migration") }
        model.remove(op.table)
    }

    func start(_ ctx: OperationContext) throws {
        guard try ctx.dialect.tableExists(ctx.physical(op.table)) else { throw SchemaError("table \(op.table) does not exist") }
    }

    func complete(_ ctx: OperationContext) throws {
        let table = ctx.physical(op.table)
        if try ctx.dialect.tableExists(table) { try ctx.dialect.dropTable(table) }
    }

    func rollback(_ ctx: OperationContext) throws {}
}
