import Manifest

/// `drop_column`: the new shape's view leaves the column out at start; new-shape writes fill it from `down`, and
/// it loses NOT NULL meanwhile (re-declared by rollback) so new-shape inserts without `down` succeed. Complete
/// renames it aside rather than dropping it.
struct PGDropColumn: PostgresOperation {
    var op: DropColumn

    func plan(_ b: inout PlanBuilder) throws {
        let (t, c) = try b.column(op.table, op.column)
        b.plan.newShape.update(op.table) { $0.columns.removeAll { $0.name == op.column } }
        let wasNotNull = b.physical(t.physical, c.physical)?.notNull ?? false
        let primaryKey = b.catalog.table(t.physical)?.primaryKey.contains(c.physical) ?? false
        guard !primaryKey else { throw PlanError("column \(op.table).\(op.column) is part of the primary key; it cannot be dropped") }
        if wasNotNull {
            b.expand(t.physical, ["ALTER TABLE \(b.qt(t.physical)) ALTER COLUMN \(b.q(c.physical)) DROP NOT NULL"])
            b.undo(t.physical, b.setNotNull(t.physical, c.physical, check: b.helper("nn", c.physical)))
        }
        if let down = op.down { b.down(t.physical, c.physical, down) }
        b.putAsideColumn(t.physical, c.physical)
    }
}
