import Manifest

/// `rename_table`: the real table keeps its old name; the new name is a view over it with `INSTEAD OF`
/// triggers for writes. Complete drops the view and renames the table.
struct RenameTableOperation: SchemaOperation {
    let op: RenameTable
    var kind: String { "rename_table" }

    func validate(_ model: ShapeModel) throws {
        var t = try model.existingTable(op.from, for: "rename")
        try requireIdentifier(op.to, "table")
        if try model.nameTaken(op.to) { throw SchemaError("a table, view or index named \(op.to) already exists") }
        model.remove(op.from)
        t.name = op.to
        model.put(t)
    }

    func start(_ ctx: OperationContext) throws {
        ctx.plan.aliasViews.append((view: op.to, table: ctx.physical(op.from)))
    }

    func complete(_ ctx: OperationContext) throws {
        let table = ctx.physical(op.from)
        if try ctx.dialect.tableExists(table), !(try ctx.dialect.tableExists(op.to)) {
            try ctx.dialect.renameTable(table, to: op.to)
        }
    }

    func rollback(_ ctx: OperationContext) throws {}
}
