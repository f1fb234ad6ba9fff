import Manifest

/// `set_replica_identity`: which columns PostgreSQL's logical replication sends for updated rows. SQLite has no
/// logical replication, so on SQLite it changes nothing (the table must exist); the PostgreSQL dialect applies it.
struct SetReplicaIdentityOperation: SchemaOperation {
    let op: SetReplicaIdentity
    var kind: String { "set_replica_identity" }

    func validate(_ model: ShapeModel) throws {
        _ = try model.table(op.table)
    }

    func start(_ ctx: OperationContext) throws {}
    func complete(_ ctx: OperationContext) throws {}
    func rollback(_ ctx: OperationContext) throws {}
}
