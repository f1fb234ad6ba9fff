import Manifest

/// `drop_table`: the new shape has no such view at start; complete moves the table to the migration's kept schema (`teal_kept_<tag>`) rather than
/// dropping it, so its rows stay until the retention window passes.
struct PGDropTable: PostgresOperation {
    var op: DropTable

    func plan(_ b: inout PlanBuilder) throws {
        let t = try b.table(op.name)
        b.plan.newShape.tables.removeAll { $0.name == op.name }
        b.contract(t.physical, phase: 0, PGCreateTable.putAside(b, t.physical))
        let kept = PGCreateTable.keptSchema(b)
        b.reopen(t.physical, phase: 2, [
            b.when("to_regclass(\(b.lit("\(b.q(kept)).\(b.q(t.physical))"))) IS NOT NULL AND to_regclass(\(b.lit(b.qt(t.physical)))) IS NULL",
                   "ALTER TABLE \(b.q(kept)).\(b.q(t.physical)) SET SCHEMA \(b.q(b.schema));"),
            RetentionSQL.dropSchemaIfEmpty(kept),
        ])
        b.plan.droppedTables.append(t.physical)
    }
}
