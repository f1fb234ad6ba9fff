import Manifest

/// `rename_table`: the new shape's view has the new name at start; complete renames the table (see
/// `MigrationPlan.settle`).
struct PGRenameTable: PostgresOperation {
    var op: RenameTable

    func plan(_ b: inout PlanBuilder) throws {
        _ = try b.table(op.from)
        guard b.plan.newShape.table(op.to) == nil else { throw PlanError("table \(op.to) already exists") }
        b.plan.newShape.update(op.from) { $0.name = op.to }
    }
}
