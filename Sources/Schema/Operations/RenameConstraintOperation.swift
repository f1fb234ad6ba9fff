import Manifest

/// `rename_constraint`: a constraint's name shows only in error messages, so the rename is made at complete,
/// in place (a unique index is re-created under the new name).
struct RenameConstraintOperation: SchemaOperation {
    let op: RenameConstraint
    var kind: String { "rename_constraint" }

    func validate(_ model: ShapeModel) throws {
        try requireIdentifier(op.to, "constraint")
        var t = try model.table(op.table)
        guard let info = t.constraint(op.from) else { throw SchemaError("table \(op.table) has no constraint named \(op.from)") }
        if t.constraint(op.to) != nil { throw SchemaError("table \(op.table) already has a constraint named \(op.to)") }
        if info.kind == .unique, try model.nameTaken(op.to) { throw SchemaError("a table, view or index named \(op.to) already exists") }
        t.constraints = t.constraints.map { c in
            var c = c
            if c.name.lowercased() == op.from.lowercased() { c.name = op.to }
            return c
        }
        model.put(t)
        if info.kind == .unique { model.setIndex(op.from, table: nil); model.setIndex(op.to, table: op.table) }
    }

    func start(_ ctx: OperationContext) throws {}

    func complete(_ ctx: OperationContext) throws {
        let table = ctx.physical(op.table)
        guard let info = try ctx.dialect.namedConstraints(of: table).first(where: { $0.name.lowercased() == op.from.lowercased() }) else { return }
        if info.item != nil {
            try ctx.dialect.renameTableConstraint(table, from: op.from, to: op.to)
        } else if let sql = try ctx.dialect.indexSQL(op.from) {
            let toks = SQLText.tokens(sql)
            guard let at = toks.firstIndex(where: { $0.identifier?.lowercased() == op.from.lowercased() }),
                  let range = sql.range(of: toks[at].text) else { throw SchemaError("cannot read the definition of index \(op.from)") }
            let renamed = sql.replacingCharacters(in: range, with: Identifiers.quote(op.to))
            try ctx.dialect.dropIndex(op.from)
            try ctx.dialect.execute(renamed)
        }
    }

    func rollback(_ ctx: OperationContext) throws {}
}
