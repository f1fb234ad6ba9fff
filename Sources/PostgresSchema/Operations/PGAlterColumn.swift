import Manifest

/// `alter_column` that changes the column (type, nullability, default, unique, check, references): a twin
/// column `_teal_new_<column>` with the new definition, filled from `up` (default: the column itself) for
/// old-shape writes and existing rows; the old column is filled from `down` (default: the twin) for new-shape
/// writes. Complete puts the old column aside, renames the twin into its place and declares its constraints. The
/// column's indexes, unique constraints and primary key (and foreign keys into it) are carried onto the twin
/// (PGTwinColumn.swift), so a primary-key column can change too.
struct PGAlterColumn: PostgresOperation {
    var op: AlterColumn

    func plan(_ b: inout PlanBuilder) throws {
        let (t, c) = try b.column(op.table, op.column)
        let old = b.physical(t.physical, c.physical)
        let primaryKey = b.catalog.table(t.physical)?.primaryKey.contains(c.physical) ?? false
        if primaryKey, op.nullable == true {
            throw PlanError("column \(op.table).\(op.column) is part of the primary key, which cannot be nullable; "
                + "drop the primary key first (drop_constraint), or declare a new key (create_constraint) before making the column nullable")
        }
        let twin = b.helper("new", c.physical)
        let finalName = op.name ?? op.column
        if finalName != op.column, t.column(finalName) != nil { throw PlanError("column \(op.table).\(finalName) already exists") }
        b.plan.newShape.update(op.table) { t in
            if let i = t.columns.firstIndex(where: { $0.name == op.column }) { t.columns[i] = Shape.Column(name: finalName, physical: twin) }
        }
        let type = try PGColumnSQL.type(op.type ?? old?.type ?? "text")
        let notNull = op.nullable.map { !$0 } ?? (old?.notNull ?? false)
        let defaultSQL = op.dropDefault ? nil : (op.default ?? old?.defaultSQL)

        var statements = ["ALTER TABLE \(b.qt(t.physical)) ADD COLUMN IF NOT EXISTS \(b.q(twin)) \(type)"]
        if let d = defaultSQL { statements.append("ALTER TABLE \(b.qt(t.physical)) ALTER COLUMN \(b.q(twin)) SET DEFAULT \(d)") }
        let nn = b.helper("nn", c.physical)
        if notNull { statements.append(b.addConstraint(t.physical, nn, "CHECK (\(b.q(twin)) IS NOT NULL) NOT VALID")) }
        // The old column must take new-shape inserts, which only fill it through `down`.
        if old?.notNull == true, !primaryKey { statements.append("ALTER TABLE \(b.qt(t.physical)) ALTER COLUMN \(b.q(c.physical)) DROP NOT NULL") }
        let fkName = op.references?.name ?? "\(t.physical)_\(finalName)_fkey"
        if let r = op.references {
            let target = try b.table(r.table)
            let targetColumn = try r.column.map { try b.column(r.table, $0).1.physical }
            var def = "FOREIGN KEY (\(b.q(twin))) REFERENCES \(b.qt(target.physical))" + (targetColumn.map { " (\(b.q($0)))" } ?? "")
            if let d = r.onDelete { def += " ON DELETE \(try b.keyword(d, PlanBuilder.actions))" }
            if let u = r.onUpdate { def += " ON UPDATE \(try b.keyword(u, PlanBuilder.actions))" }
            statements.append(b.addConstraint(t.physical, fkName, def + " NOT VALID"))
        }
        b.expand(t.physical, statements)
        // The indexes, unique constraints and primary key on the column, and foreign keys into it, follow it to the twin.
        var typeChange: (from: String, to: String)? = nil
        if let to = op.type, let from = old?.type, from.lowercased() != to.lowercased() { typeChange = (from, to) }
        let carried = old == nil ? [] : try b.carryIndexes(table: t.physical, column: c.physical, twin: twin, finalName: finalName, typeChange: typeChange)
        let uniqueIndex = b.helper("uq", c.physical)
        if op.unique != nil {
            b.expandConcurrently(t.physical, index: uniqueIndex,
                                 "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \(b.q(uniqueIndex)) ON \(b.qt(t.physical)) (\(b.q(twin)))")
        }
        let up = op.up ?? b.q(c.physical)
        b.up(t.physical, twin, up)
        b.backfill(t.physical, twin, up)
        b.down(t.physical, c.physical, op.down ?? b.q(finalName))

        // Complete: the old column aside, the twin renamed (settle), then its constraints under their final names.
        b.putAsideColumn(t.physical, c.physical)
        b.reopenTwin(table: t.physical, column: c.physical, twin: twin)
        var contract: [String] = []
        if notNull { contract += b.setNotNull(t.physical, finalName, check: nn) }
        contract += carried
        if let check = op.check {
            let name = check.name ?? "\(t.physical)_\(finalName)_check"
            contract += [b.addConstraint(t.physical, name, "CHECK (\(check.constraint)) NOT VALID"),
                         b.when(b.constraintExists(t.physical, name), "ALTER TABLE \(b.qt(t.physical)) VALIDATE CONSTRAINT \(b.q(name));")]
        }
        if op.references != nil {
            contract.append(b.when(b.constraintExists(t.physical, fkName), "ALTER TABLE \(b.qt(t.physical)) VALIDATE CONSTRAINT \(b.q(fkName));"))
        }
        if let u = op.unique {
            let name = u.name ?? "\(t.physical)_\(finalName)_key"
            contract.append(b.when("to_regclass(\(b.lit("\(b.q(b.schema)).\(b.q(uniqueIndex))"))) IS NOT NULL AND NOT \(b.constraintExists(t.physical, name))",
                                   "ALTER TABLE \(b.qt(t.physical)) ADD CONSTRAINT \(b.q(name)) UNIQUE USING INDEX \(b.q(uniqueIndex));"))
        }
        if let comment = op.comment {
            contract.append("COMMENT ON COLUMN \(b.qt(t.physical)).\(b.q(finalName)) IS \(b.lit(comment))")
        } else if op.dropComment {
            contract.append("COMMENT ON COLUMN \(b.qt(t.physical)).\(b.q(finalName)) IS NULL")
        }
        if !contract.isEmpty { b.contract(t.physical, phase: 2, contract) }

        var undo = ["ALTER TABLE IF EXISTS \(b.qt(t.physical)) DROP COLUMN IF EXISTS \(b.q(twin))"]
        if old?.notNull == true, !primaryKey { undo = b.setNotNull(t.physical, c.physical, check: b.helper("nnold", c.physical)) + undo }
        b.undo(t.physical, undo)
        if op.unique != nil { b.undo(t.physical, ["DROP INDEX CONCURRENTLY IF EXISTS \(b.q(b.schema)).\(b.q(uniqueIndex))"], concurrently: true) }
    }
}
