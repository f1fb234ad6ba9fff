import Manifest

/// The PostgreSQL implementation of each operation of pgroll's vocabulary, one file each.
enum PostgresOperations {
    static func of(_ op: Manifest.Operation) -> any PostgresOperation {
        switch op {
        case .createTable(let o): PGCreateTable(op: o)
        case .dropTable(let o): PGDropTable(op: o)
        case .renameTable(let o): PGRenameTable(op: o)
        case .addColumn(let o): PGAddColumn(op: o)
        case .dropColumn(let o): PGDropColumn(op: o)
        case .renameColumn(let o): PGRenameColumn(table: o.table, from: o.from, to: o.to)
        case .alterColumn(let o):
            if let name = o.name, !o.changesShape, o.up == nil, o.down == nil {
                PGRenameColumn(table: o.table, from: o.column, to: name)
            } else {
                PGAlterColumn(op: o)
            }
        case .createIndex(let o): PGCreateIndex(op: o)
        case .dropIndex(let o): PGDropIndex(op: o)
        case .createConstraint(let o): PGCreateConstraint(op: o)
        case .dropConstraint(let o): PGDropConstraint(table: o.table, name: o.name, single: (o.up, o.down))
        case .dropMultiColumnConstraint(let o): PGDropConstraint(table: o.table, name: o.name, up: o.up, down: o.down)
        case .renameConstraint(let o): PGRenameConstraint(op: o)
        case .setReplicaIdentity(let o): PGSetReplicaIdentity(op: o)
        case .sql(let o): PGRawSQL(op: o)
        }
    }
}
