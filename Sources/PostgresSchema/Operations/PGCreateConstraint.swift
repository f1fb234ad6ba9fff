import Manifest

/// `create_constraint` over existing columns: a check or foreign key goes in `NOT VALID` at start (new writes in
/// either shape must satisfy it) and is validated at complete; a unique constraint is an index built
/// concurrently at start, attached `USING INDEX` at complete; a primary key the same way. Rollback drops them.
struct PGCreateConstraint: PostgresOperation {
    var op: CreateConstraint

    func plan(_ b: inout PlanBuilder) throws {
        let t = try b.table(op.table)
        let columns = try op.columns.map { name -> String in
            guard let c = t.column(name) else { throw PlanError("column \(op.table).\(name) does not exist") }
            return b.q(c.physical)
        }
        let cols = columns.joined(separator: ", ")
        switch op.type {
        case .check:
            guard let check = op.check else { throw PlanError("check constraint \(op.name) has no check") }
            b.expand(t.physical, [b.addConstraint(t.physical, op.name, "CHECK (\(check)) NOT VALID")])
            b.contract(t.physical, phase: 2, [b.when(b.constraintExists(t.physical, op.name),
                                                     "ALTER TABLE \(b.qt(t.physical)) VALIDATE CONSTRAINT \(b.q(op.name));")])
        case .foreignKey:
            guard let r = op.references else { throw PlanError("foreign key \(op.name) has no references") }
            let target = try b.table(r.table)
            let targetColumns = try r.columns.map { try b.column(r.table, $0).1.physical }
            var def = "FOREIGN KEY (\(cols)) REFERENCES \(b.qt(target.physical)) (\(targetColumns.map(b.q).joined(separator: ", ")))"
            if let d = r.onDelete { def += " ON DELETE \(try b.keyword(d, PlanBuilder.actions))" }
            if let u = r.onUpdate { def += " ON UPDATE \(try b.keyword(u, PlanBuilder.actions))" }
            b.expand(t.physical, [b.addConstraint(t.physical, op.name, def + " NOT VALID")])
            b.contract(t.physical, phase: 2, [b.when(b.constraintExists(t.physical, op.name),
                                                     "ALTER TABLE \(b.qt(t.physical)) VALIDATE CONSTRAINT \(b.q(op.name));")])
        case .unique, .primaryKey:
            let index = b.helper("uq", op.name)
            b.expandConcurrently(t.physical, index: index, "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \(b.q(index)) ON \(b.qt(t.physical)) (\(cols))")
            let kind = op.type == .unique ? "UNIQUE" : "PRIMARY KEY"
            b.contract(t.physical, phase: 2, [b.when("to_regclass(\(b.lit("\(b.q(b.schema)).\(b.q(index))"))) IS NOT NULL AND NOT \(b.constraintExists(t.physical, op.name))",
                                                     "ALTER TABLE \(b.qt(t.physical)) ADD CONSTRAINT \(b.q(op.name)) \(kind) USING INDEX \(b.q(index));")])
            b.undo(t.physical, ["DROP INDEX CONCURRENTLY IF EXISTS \(b.q(b.schema)).\(b.q(index))"], concurrently: true)
            return
        case .exclude:
            throw PlanError("exclude constraints can only be declared by create_table")
        }
        b.undo(t.physical, ["ALTER TABLE IF EXISTS \(b.qt(t.physical)) DROP CONSTRAINT IF EXISTS \(b.q(op.name))"])
    }
}
