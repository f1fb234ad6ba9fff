import Manifest

/// `drop_constraint` and `drop_multicolumn_constraint`: both shapes keep the constraint while both run (the
/// old release relies on it); complete drops it.
struct PGDropConstraint: PostgresOperation {
    var table: String
    var name: String

    func plan(_ b: inout PlanBuilder) throws {
        let t = try b.table(table)
        b.contract(t.physical, phase: 0, ["ALTER TABLE IF EXISTS \(b.qt(t.physical)) DROP CONSTRAINT IF EXISTS \(b.q(name))"])
        b.refuseReopen("complete dropped constraint \(name) of \(table), and rows written since may break it; declare it again in a new migration")
    }
}
