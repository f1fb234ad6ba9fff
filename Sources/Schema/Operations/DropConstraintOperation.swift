import Manifest

/// `drop_constraint` and `drop_multicolumn_constraint`: the constraint is lifted at start, so rows the new shape
/// writes are accepted; both shapes keep reading the same column. Rollback first gives the rows that break the
/// constraint their `down` value, then declares it again exactly as it was.
struct DropConstraintOperation: SchemaOperation {
    let table: String
    let name: String
    /// Per column, the old-shape value of a row the new shape wrote (drop_multicolumn_constraint's `down`).
    let down: [String: String]
    /// drop_constraint's single `down`, for the constraint's column.
    let singleDown: String?
    let kind: String

    func validate(_ model: ShapeModel) throws {
        var t = try model.table(table)
        guard let info = t.constraint(name) else { throw SchemaError("table \(table) has no constraint named \(name)") }
        if info.kind == .primaryKey { throw SchemaError("SQLite cannot drop the primary key \(name) in place") }
        for column in down.keys where t.column(column) == nil { throw SchemaError("table \(table) has no column \(column)") }
        t.constraints.removeAll { $0.name.lowercased() == name.lowercased() }
        model.put(t)
        if info.kind == .unique { model.setIndex(name, table: nil) }
    }

    func start(_ ctx: OperationContext) throws {
        let physical = ctx.physical(table)
        guard let info = try ctx.dialect.namedConstraints(of: physical).first(where: { $0.name.lowercased() == name.lowercased() }) else {
            throw SchemaError("table \(table) has no constraint named \(name)")
        }
        try ctx.setNote("columns", info.columns.joined(separator: ","))
        if let item = info.item {
            try ctx.setNote("item", item.trimmingCharacters(in: .whitespacesAndNewlines))
            _ = try ctx.dialect.removeTableConstraints(physical) { SQLText.constraintName(ofItem: $0)?.lowercased() == name.lowercased() }
        } else {
            try ctx.setNote("index", try ctx.dialect.indexSQL(info.name))
            try ctx.setNote("index.columns", info.columns.joined(separator: ","))
            try ctx.dialect.dropIndex(info.name)
        }
    }

    func complete(_ ctx: OperationContext) throws {}

    func rollback(_ ctx: OperationContext) throws {
        let physical = ctx.physical(table)
        let columns = (try ctx.note("columns") ?? "").split(separator: ",").map(String.init)
        var downs = down
        if let singleDown, let first = columns.first { downs[first] = singleDown }
        downs = downs.filter { $0.value.trimmingCharacters(in: .whitespaces).lowercased() != $0.key.lowercased() }
        let q = Identifiers.quote(physical)
        if let item = try ctx.note("item") {
            let toks = SQLText.tokens(item)
            if let at = toks.firstIndex(where: { $0.isKeyword("CHECK") }), at + 1 < toks.count, toks[at + 1].kind == .group, !downs.isEmpty {
                let sets = downs.sorted { $0.key < $1.key }.map { "\(Identifiers.quote($0.key)) = (\($0.value))" }.joined(separator: ", ")
                try ctx.dialect.execute("UPDATE \(q) SET \(sets) WHERE NOT COALESCE(\(toks[at + 1].text), 1)")
            }
            try ctx.dialect.addTableConstraint(physical, item: item)
        } else if let sql = try ctx.note("index") {
            if !downs.isEmpty {
                let cols = columns.map(Identifiers.quote).joined(separator: ", ")
                let sets = downs.sorted { $0.key < $1.key }.map { "\(Identifiers.quote($0.key)) = (\($0.value))" }.joined(separator: ", ")
                try ctx.dialect.execute("UPDATE \(q) SET \(sets) WHERE rowid NOT IN (SELECT min(rowid) FROM \(q) GROUP BY \(cols))")
            }
            if try ctx.dialect.tableOfIndex(name) == nil { try ctx.dialect.execute(sql) }
        }
    }
}
