import Manifest

/// `drop_table`: the new shape has no such view at start; complete moves the table to the migration's kept schema (`teal_kept_<tag>`) rather than
/// dropping it, so its rows stay until the retention window passes.
struct PGDropTable: PostgresOperation {
    var op: DropTable

    func plan(_ b: inout PlanBuilder) throws {
        let t = try b.table(op.name)
        b.plan.newShape.tables.removeAll { $0.name == op.name }
        b.contract(t.physical, phase: 0, PGCreateTable.putAside(b, t.physical))
        b.plan.droppedTables.append(t.physical)
    }
}
