import Manifest
import Schema

/// `create_constraint`, as pgroll runs it: every column in `columns` that the table already has gets a twin
/// (`_teal_new_<column>`) that the new shape sees under the column's name, holding the constrained value. `up`
/// (per column; default the column itself) computes it from the old shape's row, for old-shape writes and for
/// existing rows in the backfill, so rows that violate the constraint are made to satisfy it rather than failing
/// the migration; `down` (per column; default the twin) carries new-shape writes back into the old column. The
/// constraint is declared on the twins: a check or foreign key `NOT VALID` at start (validated at complete), a
/// unique constraint as an index built concurrently at start (attached `USING INDEX` at complete). The old shape
/// keeps writing its own columns, unconstrained. Complete puts the old columns aside and renames the twins into
/// their places (their indexes carried along, PGTwinColumn.swift); rollback drops the twins and leaves the old
/// rows as they were. Columns this migration adds, and primary keys, are constrained in place.
struct PGCreateConstraint: PostgresOperation {
    var op: CreateConstraint

    func plan(_ b: inout PlanBuilder) throws {
        let t = try b.table(op.table)
        for name in op.columns where t.column(name) == nil { throw PlanError("column \(op.table).\(name) does not exist") }
        for name in Set(op.up.keys).union(op.down.keys).sorted() where !op.columns.contains(name) {
            throw PlanError("up/down name column \(name), which is not one of the constraint's columns")
        }
        let primaryKey = b.catalog.table(t.physical)?.primaryKey ?? []
        // The columns that get a twin: those the table had before this migration (and a primary key is declared in place).
        var twins: [String: String] = [:]
        if op.type != .primaryKey && op.type != .exclude {
            for name in op.columns {
                let c = t.column(name)!
                guard b.physical(t.physical, c.physical) != nil else { continue }
                if primaryKey.contains(c.physical) {
                    throw PlanError("column \(op.table).\(name) is part of the primary key; constrain it with alter_column (check, unique or references), "
                        + "which carries the key along")
                }
                twins[name] = b.helper("new", c.physical)
            }
        }
        let physical = { (name: String) -> String in twins[name] ?? t.column(name)!.physical }
        let cols = op.columns.map { b.q(physical($0)) }.joined(separator: ", ")

        var contract: [String] = []
        for name in op.columns {
            guard let twin = twins[name] else { continue }
            let c = t.column(name)!
            let old = b.physical(t.physical, c.physical)!
            b.plan.newShape.update(op.table) { t in
                if let i = t.columns.firstIndex(where: { $0.name == name }) { t.columns[i] = Shape.Column(name: name, physical: twin) }
            }
            var statements = ["ALTER TABLE \(b.qt(t.physical)) ADD COLUMN IF NOT EXISTS \(b.q(twin)) \(try PGColumnSQL.type(old.type))"]
            if let d = old.defaultSQL { statements.append("ALTER TABLE \(b.qt(t.physical)) ALTER COLUMN \(b.q(twin)) SET DEFAULT \(d)") }
            let nn = b.helper("nn", c.physical)
            if old.notNull { statements.append(b.addConstraint(t.physical, nn, "CHECK (\(b.q(twin)) IS NOT NULL) NOT VALID")) }
            b.expand(t.physical, statements)
            let up = op.up[name] ?? b.q(c.physical)
            b.up(t.physical, twin, up)
            b.backfill(t.physical, twin, up)
            b.down(t.physical, c.physical, op.down[name] ?? b.q(name))
            b.putAsideColumn(t.physical, c.physical)
            b.reopenTwin(table: t.physical, column: c.physical, twin: twin)
            if old.notNull { contract += b.setNotNull(t.physical, name, check: nn) }
            contract += try b.carryIndexes(table: t.physical, column: c.physical, twin: twin, finalName: name)
            b.undo(t.physical, ["ALTER TABLE IF EXISTS \(b.qt(t.physical)) DROP COLUMN IF EXISTS \(b.q(twin))"])
        }

        switch op.type {
        case .check:
            guard var check = op.check else { throw PlanError("check constraint \(op.name) has no check") }
            // The check is written over the new shape's names; on the table it reads the twins.
            for (name, twin) in twins.sorted(by: { $0.key < $1.key }) { check = SQLText.replacingColumn(in: check, name, with: twin) }
            b.expand(t.physical, [b.addConstraint(t.physical, op.name, "CHECK (\(check))\(op.noInherit ? " NO INHERIT" : "") NOT VALID")])
            contract.append(b.when(b.constraintExists(t.physical, op.name), "ALTER TABLE \(b.qt(t.physical)) VALIDATE CONSTRAINT \(b.q(op.name));"))
        case .foreignKey:
            guard let r = op.references else { throw PlanError("foreign key \(op.name) has no references") }
            let target = try b.table(r.table)
            let targetColumns = try r.columns.map { try b.column(r.table, $0).1.physical }
            var def = "FOREIGN KEY (\(cols)) REFERENCES \(b.qt(target.physical)) (\(targetColumns.map(b.q).joined(separator: ", ")))"
            if let d = r.onDelete { def += " ON DELETE \(try b.keyword(d, PlanBuilder.actions))" }
            if let u = r.onUpdate { def += " ON UPDATE \(try b.keyword(u, PlanBuilder.actions))" }
            b.expand(t.physical, [b.addConstraint(t.physical, op.name, def + " NOT VALID")])
            contract.append(b.when(b.constraintExists(t.physical, op.name), "ALTER TABLE \(b.qt(t.physical)) VALIDATE CONSTRAINT \(b.q(op.name));"))
        case .unique, .primaryKey:
            let index = b.helper("uq", op.name)
            b.expandConcurrently(t.physical, index: index, "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \(b.q(index)) ON \(b.qt(t.physical)) (\(cols))")
            let kind = op.type == .unique ? "UNIQUE" : "PRIMARY KEY"
            contract.append(b.when("to_regclass(\(b.lit("\(b.q(b.schema)).\(b.q(index))"))) IS NOT NULL AND NOT \(b.constraintExists(t.physical, op.name))",
                                   "ALTER TABLE \(b.qt(t.physical)) ADD CONSTRAINT \(b.q(op.name)) \(kind) USING INDEX \(b.q(index));"))
            b.undo(t.physical, ["DROP INDEX CONCURRENTLY IF EXISTS \(b.q(b.schema)).\(b.q(index))"], concurrently: true)
        case .exclude:
            throw PlanError("exclude constraints can only be declared by create_table")
        }
        b.contract(t.physical, phase: 2, contract)
        if op.type == .check || op.type == .foreignKey {
            b.undo(t.physical, ["ALTER TABLE IF EXISTS \(b.qt(t.physical)) DROP CONSTRAINT IF EXISTS \(b.q(op.name))"])
        }
    }
}
