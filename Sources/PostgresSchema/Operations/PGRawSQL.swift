import Manifest

/// `sql`: `up` runs at start (at complete with `onComplete`), `down` on rollback, with the app schema on the
/// session's search_path, one statement at a time (`SQLStatements`). Tables it creates join the new shape (the engine reads the catalog again after start).
struct PGRawSQL: PostgresOperation {
    var op: RawSQL

    func plan(_ b: inout PlanBuilder) throws {
        if op.onComplete {
            b.contract(nil, phase: 2, SQLStatements.split(op.up), raw: true)
            b.refuseReopen("its SQL ran at complete (onComplete) and cannot be undone")
        } else {
            b.expand(nil, SQLStatements.split(op.up), raw: true)
            if let down = op.down { b.undo(nil, SQLStatements.split(down), raw: true) }
        }
    }
}
