import Manifest

/// `drop_index`: both shapes keep using it while both run; complete drops it `CONCURRENTLY`.
struct PGDropIndex: PostgresOperation {
    var op: DropIndex

    func plan(_ b: inout PlanBuilder) throws {
        let owner = b.catalogIndexTable(op.name)
        b.contractConcurrently(owner, "DROP INDEX CONCURRENTLY IF EXISTS \(b.q(b.schema)).\(b.q(op.name))")
        // Reopen builds it again, as it was defined when the migration started.
        if let owner, let index = b.catalog.indexDetails?.first(where: { $0.name == op.name }), index.constraint == nil,
           let tail = Catalog.indexTail(index.definition) {
            let unique = index.definition.hasPrefix("CREATE UNIQUE ")
            b.reopen(owner, phase: 3, ["CREATE \(unique ? "UNIQUE " : "")INDEX CONCURRENTLY IF NOT EXISTS \(b.q(op.name)) ON \(b.qt(owner)) USING \(tail)"],
                     concurrently: true, index: op.name)
        } else {
            b.refuseReopen("index \(op.name) that complete dropped is not known from the catalog read at start")
        }
    }
}
