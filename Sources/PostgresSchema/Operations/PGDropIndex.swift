import Manifest

/// `drop_index`: both shapes keep using it while both run; complete drops it `CONCURRENTLY`.
struct PGDropIndex: PostgresOperation {
    var op: DropIndex

    func plan(_ b: inout PlanBuilder) throws {
        let owner = b.catalogIndexTable(op.name)
        b.contractConcurrently(owner, "DROP INDEX CONCURRENTLY IF EXISTS \(b.q(b.schema)).\(b.q(op.name))")
    }
}
