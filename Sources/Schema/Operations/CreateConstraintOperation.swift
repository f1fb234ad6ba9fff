import Manifest

/// `create_constraint` on an existing table: a check, unique constraint or foreign key over one or more columns.
/// A column whose `up` computes a new value gets a hidden twin filled through `up` (as alter_column does), so
/// old-shape writes keep working and the new values meet the constraint; complete puts the twins in place and
/// declares the constraint after checking the rows. A primary key, which SQLite cannot add in place, is only
/// possible on a table created in the same migration (see `FoldedConstraintOperation`).
struct CreateConstraintOperation: SchemaOperation {
    let op: CreateConstraint
    var kind: String { "create_constraint" }

    /// Columns whose value changes between the shapes.
    var twins: [AlterColumnOperation] {
        op.columns.compactMap { column in
            guard let up = op.up[column], up.trimmingCharacters(in: .whitespaces).lowercased() != column.lowercased(),
                  up.trimmingCharacters(in: .whitespaces) != Identifiers.quote(column) else { return nil }
            return AlterColumnOperation(op: AlterColumn(table: op.table, column: column, up: up, down: op.down[column]), forceTwin: true)
        }
    }

    func validate(_ model: ShapeModel) throws {
        try requireIdentifier(op.name, "constraint")
        var t = try model.existingTable(op.table, for: "constraint \(op.name)")
        if op.type == .primaryKey { throw SchemaError("SQLite cannot add a primary key to an existing table in place; declare it in create_table") }
        if op.type == .exclude { throw SchemaError("EXCLUDE constraints need PostgreSQL") }
        for column in op.columns where t.column(column) == nil { throw SchemaError("table \(op.table) has no column \(column)") }
        if t.constraint(op.name) != nil { throw SchemaError("table \(op.table) already has a constraint named \(op.name)") }
        if op.type == .unique, try model.nameTaken(op.name) { throw SchemaError("a table, view or index named \(op.name) already exists") }
        if let r = op.references {
            let target = try model.table(r.table)
            for column in r.columns where target.column(column) == nil { throw SchemaError("table \(r.table) has no column \(column)") }
            if r.columns.count != op.columns.count { throw SchemaError("constraint \(op.name) has \(op.columns.count) column(s) but references \(r.columns.count)") }
        }
        let kind: ConstraintInfo.Kind = op.type == .check ? .check : op.type == .foreignKey ? .foreignKey : .unique
        t.constraints.append(ConstraintInfo(name: op.name, kind: kind, columns: op.columns, item: nil))
        model.put(t)
        if op.type == .unique { model.setIndex(op.name, table: op.table) }
    }

    func start(_ ctx: OperationContext) throws {
        for twin in twins { try twin.start(ctx) }
    }

    func complete(_ ctx: OperationContext) throws {
        for twin in twins { try twin.complete(ctx) }
        let table = ctx.physical(op.table)
        switch op.type {
        case .check:
            let check = op.check ?? "1"
            let n = try ctx.dialect.count(table, where: "NOT (\(check))")
            if n > 0 { throw SchemaError("\(n) row(s) of \(op.table) fail the check \(op.name) (\(check)); fix the rows or roll back") }
            try ctx.dialect.addCheckConstraint(table, name: op.name, expression: check)
        case .unique:
            let cols = op.columns.map(Identifiers.quote).joined(separator: ", ")
            let duplicates = try ctx.dialect.count(table, where: "rowid NOT IN (SELECT min(rowid) FROM \(Identifiers.quote(table)) GROUP BY \(cols))")
            if duplicates > 0 {
                throw SchemaError("\(duplicates) row(s) of \(op.table) repeat values of (\(op.columns.joined(separator: ", "))), which \(op.name) makes unique; fix the rows or roll back")
            }
            try ctx.dialect.createIndex(name: op.name, table: table, columns: op.columns, unique: true)
        case .foreignKey:
            guard let r = op.references else { return }
            try ctx.dialect.addForeignKey(table, name: op.name, columns: op.columns, references: r, deferrable: false, initiallyDeferred: false)
        case .primaryKey, .exclude:
            break
        }
    }

    func rollback(_ ctx: OperationContext) throws {
        for twin in twins.reversed() { try twin.rollback(ctx) }
    }
}

/// A create_constraint on a table created earlier in the same migration: that create_table declares it.
struct FoldedConstraintOperation: SchemaOperation {
    let op: CreateConstraint
    /// Index of the create_table that declares the constraint.
    let into: Int
    var kind: String { "create_constraint" }

    /// The create_table at `into` declares the constraint and checked it; nothing is left to do here.
    func validate(_ model: ShapeModel) throws {
        let t = try model.table(op.table)
        if t.constraint(op.name) == nil { throw SchemaError("table \(op.table) has no constraint named \(op.name)") }
    }

    func start(_ ctx: OperationContext) throws {}
    func complete(_ ctx: OperationContext) throws {}
    func rollback(_ ctx: OperationContext) throws {}
}
