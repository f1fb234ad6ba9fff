import Manifest

/// `alter_column` changing a column's type, nullability, default, uniqueness, check or reference.
///
/// SQLite cannot show one column name with two definitions, so the new definition lives in a second physical
/// column: the new name when the operation renames the column too (teal's `name`), else a hidden twin
/// (`_teal_new_<column>`, pgroll's form). Old-shape writes fill it through `up`; rows written with a value only the
/// new shape takes (a NULL the old shape forbids) get `down` in the old column. While both shapes run, both read
/// the old column under its name; complete drops it and puts the new column in its place, with the new
/// constraints, after checking the rows. A change of the default alone is made at complete, in place.
struct AlterColumnOperation: SchemaOperation {
    let op: AlterColumn
    var kind: String { "alter_column" }
    /// Gives the column a twin even when nothing but its values change (create_constraint's `up`).
    var forceTwin = false

    static func twin(_ column: String) -> String { "_teal_new_\(column)" }

    /// The physical column of the new shape while the migration is in flight.
    var target: String { op.name ?? Self.twin(op.column) }
    /// Its name after complete.
    var finalName: String { op.name ?? op.column }

    /// Nothing the rows must follow changes: only the default or the comment.
    var inPlace: Bool {
        !forceTwin && op.name == nil && op.type == nil && op.nullable == nil && op.unique == nil && op.check == nil && op.references == nil
    }

    func validate(_ model: ShapeModel) throws {
        var t = try model.existingTable(op.table, for: "change")
        if let name = op.name {
            try requireIdentifier(name, "column")
            if t.column(name) != nil { throw SchemaError("table \(op.table) already has a column \(name)") }
        }
        guard let column = t.column(op.column) else { throw SchemaError("table \(op.table) has no column \(op.column)") }
        if !inPlace {
            if column.primaryKey { throw SchemaError("cannot alter \(op.table).\(op.column): it is the primary key") }
            if t.indexes.contains(where: { $0.fromConstraint && $0.columns.contains { $0.lowercased() == op.column.lowercased() } }) {
                throw SchemaError("cannot alter \(op.table).\(op.column): it is part of a UNIQUE constraint declared in the table, which SQLite cannot drop in place")
            }
            if op.name != nil, column.notNull && column.defaultSQL == nil && op.down == nil && op.type != nil {
                throw SchemaError("\(op.table).\(op.column) is NOT NULL: give `down` so rows written in the new shape get an old-shape value")
            }
        }
        if let u = op.unique {
            let name = u.name ?? "\(op.table)_\(finalName)_key"
            if try model.nameTaken(name) || t.constraint(name) != nil { throw SchemaError("a constraint or index named \(name) already exists") }
            t.constraints.append(ConstraintInfo(name: name, kind: .unique, columns: [finalName], item: nil))
            model.setIndex(name, table: op.table)
        }
        if let c = op.check {
            let name = c.name ?? "\(op.table)_\(finalName)_check"
            if t.constraint(name) != nil { throw SchemaError("table \(op.table) already has a constraint named \(name)") }
            t.constraints.append(ConstraintInfo(name: name, kind: .check, columns: [finalName], item: nil))
        }
        if let r = op.references {
            _ = try model.table(r.table)
            let name = r.name ?? "\(op.table)_\(finalName)_fkey"
            if t.constraint(name) != nil { throw SchemaError("table \(op.table) already has a constraint named \(name)") }
            t.constraints.append(ConstraintInfo(name: name, kind: .foreignKey, columns: [finalName], item: nil))
        }
        t.columns = t.columns.map {
            $0.name.lowercased() == op.column.lowercased()
                ? ColumnInfo(name: finalName, type: op.type ?? $0.type, notNull: !(op.nullable ?? !$0.notNull),
                             defaultSQL: op.dropDefault ? nil : (op.default ?? $0.defaultSQL), primaryKey: false)
                : $0
        }
        model.put(t)
    }

    /// `down` as written speaks of the new column under its final name; while in flight that is `target`.
    var downExpression: String? {
        guard let down = op.down else { return nil }
        return op.name == nil ? SQLText.replacingColumn(in: down, op.column, with: target) : down
    }

    func start(_ ctx: OperationContext) throws {
        if inPlace { return }
        let table = ctx.physical(op.table)
        guard let column = try ctx.dialect.column(table, op.column) else { throw SchemaError("table \(op.table) has no column \(op.column)") }
        try ctx.dialect.addColumn(table, name: target, type: op.type ?? column.type, literalDefault: nil, references: nil)
        try ctx.relax(table: table, column: column)
        let up = op.up ?? Identifiers.quote(column.name)
        let down = downExpression ?? Identifiers.quote(target)
        let columns = try ctx.dialect.columns(of: table).map(\.name)
        let newDefault = op.dropDefault ? nil : (op.default ?? column.defaultSQL)
        ctx.plan.add(DualAssignment(target: target, expression: up,
                                    sources: SQLText.referencedColumns(in: up, among: columns.filter { $0 != target }),
                                    fallback: newDefault, backfill: true), on: table)
        ctx.plan.add(DualAssignment(target: column.name, expression: down,
                                    sources: SQLText.referencedColumns(in: down, among: columns.filter { $0 != column.name }),
                                    fallback: column.defaultSQL, backfill: false, requiredInOldShape: column.notNull), on: table)
    }

    func complete(_ ctx: OperationContext) throws {
        let table = ctx.physical(op.table)
        if inPlace {
            guard let column = try ctx.dialect.column(table, op.column) else { return }
            if op.dropDefault || op.default != nil {
                try ctx.dialect.setColumnConstraints(table: table, column: column.name, notNull: column.notNull,
                                                     default: op.dropDefault ? nil : op.default, addingCheck: nil)
            }
            return
        }
        guard let column = try ctx.dialect.column(table, op.column), try ctx.dialect.column(table, target) != nil else { return }
        let moved = try ctx.dropIndexes(table: table, covering: column.name)
        // Table constraints naming the column would stop SQLite from dropping it; they come back on the new column.
        let detached = try ctx.dialect.removeTableConstraints(table) { !SQLText.referencedColumns(in: $0, among: [column.name]).isEmpty }
        try ctx.dialect.dropColumn(table, column.name)
        if op.name == nil { try ctx.dialect.renameColumn(table, from: target, to: column.name) }
        for index in moved {
            if op.name == nil, let sql = index.sql {
                try ctx.dialect.execute(sql)
            } else {
                let columns = index.columns.map { $0.lowercased() == column.name.lowercased() ? finalName : $0 }
                try ctx.dialect.createIndex(name: index.name, table: table, columns: columns, unique: index.unique)
            }
        }
        for item in detached {
            try ctx.dialect.addTableConstraint(table, item: op.name == nil ? item : SQLText.replacingColumn(in: item, column.name, with: finalName))
        }
        let wasNotNull = try ctx.note("notnull.\(column.name)") == "1"
        let oldDefault = try ctx.note("default.\(column.name)")
        try ctx.enforce(table: table, logicalTable: op.table, column: finalName, nullable: op.nullable ?? !wasNotNull,
                        default: op.dropDefault ? nil : (op.default ?? oldDefault),
                        unique: op.unique.map { $0.name ?? "\(op.table)_\(finalName)_key" }, check: op.check, references: op.references)
    }

    func rollback(_ ctx: OperationContext) throws {
        if inPlace { return }
        let table = ctx.physical(op.table)
        guard try ctx.dialect.column(table, target) != nil else { return }
        _ = try ctx.dropIndexes(table: table, covering: target)
        try ctx.dialect.dropAddedColumn(table, target)
        try ctx.restoreRelaxed(table: table, column: op.column)
    }
}
