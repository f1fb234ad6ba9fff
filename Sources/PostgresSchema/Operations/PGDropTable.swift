import Manifest

/// `drop_table`: the new shape has no such view at start; complete moves the table to `teal_kept` rather than
/// dropping it, so its rows stay until the retention window passes.
struct PGDropTable: PostgresOperation {
    var op: DropTable

    func plan(_ b: inout PlanBuilder) throws {
        let t = try b.table(op.name)
        b.plan.newShape.tables.removeAll { $0.name == op.name }
        let kept = PGCreateTable.keptName(b, t.physical)
        b.contract(t.physical, phase: 0, [
            "CREATE SCHEMA IF NOT EXISTS teal_kept",
            "DROP TABLE IF EXISTS teal_kept.\(b.q(kept))",
            "ALTER TABLE IF EXISTS \(b.qt(t.physical)) RENAME TO \(b.q(kept))",
            "ALTER TABLE IF EXISTS \(b.qt(kept)) SET SCHEMA teal_kept",
        ])
    }
}
