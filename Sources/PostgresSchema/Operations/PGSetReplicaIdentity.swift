import Manifest

/// `set_replica_identity`: what logical replication sends for updated and deleted rows; set at start (it changes
/// no shape), back to DEFAULT on rollback.
struct PGSetReplicaIdentity: PostgresOperation {
    var op: SetReplicaIdentity

    func plan(_ b: inout PlanBuilder) throws {
        let t = try b.table(op.table)
        let identity: String
        switch op.type.lowercased() {
        case "default": identity = "DEFAULT"
        case "full": identity = "FULL"
        case "nothing": identity = "NOTHING"
        case "index":
            guard let index = op.index else { throw PlanError("replica identity 'index' needs an index") }
            identity = "USING INDEX \(b.q(index))"
        default: throw PlanError("replica identity must be default, full, nothing or index, got '\(op.type)'")
        }
        b.expand(t.physical, ["ALTER TABLE \(b.qt(t.physical)) REPLICA IDENTITY \(identity)"])
        b.undo(t.physical, ["ALTER TABLE IF EXISTS \(b.qt(t.physical)) REPLICA IDENTITY DEFAULT"])
    }
}
