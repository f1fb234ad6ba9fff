import Manifest

/// `rename_column` (and `alter_column` with only a new name): the new shape's view shows the new name at start;
/// complete renames the column (see `MigrationPlan.settle`).
struct PGRenameColumn: PostgresOperation {
    var table: String
    var from: String
    var to: String

    func plan(_ b: inout PlanBuilder) throws {
        let (t, _) = try b.column(table, from)
        guard t.column(to) == nil else { throw PlanError("column \(table).\(to) already exists") }
        b.plan.newShape.update(table) { t in
            if let i = t.columns.firstIndex(where: { $0.name == from }) { t.columns[i].name = to }
        }
    }
}
