import Manifest

/// `drop_index`: the old shape may rely on the index, so it goes at complete.
struct DropIndexOperation: SchemaOperation {
    let op: DropIndex
    var kind: String { "drop_index" }

    func validate(_ model: ShapeModel) throws {
        guard try model.indexTable(op.name) != nil else { throw SchemaError("index \(op.name) does not exist") }
        model.setIndex(op.name, table: nil)
    }

    func start(_ ctx: OperationContext) throws {
        guard try ctx.dialect.tableOfIndex(op.name) != nil else { throw SchemaError("index \(op.name) does not exist") }
    }

    func complete(_ ctx: OperationContext) throws {
        try ctx.dialect.dropIndex(op.name)
    }

    func rollback(_ ctx: OperationContext) throws {}
}
