import Manifest

/// `create_index`: built `CONCURRENTLY` at start (writers never wait; an index left invalid by a failed build is
/// dropped and built again); rollback drops it the same way.
struct PGCreateIndex: PostgresOperation {
    var op: CreateIndex

    func plan(_ b: inout PlanBuilder) throws {
        let t = try b.table(op.table)
        var fields: [String] = []
        for f in op.columns {
            guard let c = t.column(f.column) else { throw PlanError("column \(op.table).\(f.column) does not exist") }
            var sql = b.q(c.physical)
            if let collate = f.collate { sql += " COLLATE \(b.q(collate))" }
            if let opclass = f.opclass { sql += " \(try PGColumnSQL.type(opclass))" }
            if let sort = f.sort { sql += " \(try b.keyword(sort, ["ASC", "DESC"]))" }
            if let nulls = f.nulls { sql += " NULLS \(try b.keyword(nulls.replacingOccurrences(of: "NULLS ", with: "", options: .caseInsensitive), ["FIRST", "LAST"]))" }
            fields.append(sql)
        }
        var sql = "CREATE \(op.unique ? "UNIQUE " : "")INDEX CONCURRENTLY IF NOT EXISTS \(b.q(op.name)) ON \(b.qt(t.physical))"
        if let m = op.method { sql += " USING \(try b.keyword(m, ["BTREE", "HASH", "GIST", "SPGIST", "GIN", "BRIN"]).lowercased())" }
        sql += " (\(fields.joined(separator: ", ")))"
        if let p = op.storageParameters { sql += " WITH (\(p))" }
        if let p = op.predicate { sql += " WHERE \(p)" }
        b.expandConcurrently(t.physical, index: op.name, sql)
        b.undo(t.physical, ["DROP INDEX CONCURRENTLY IF EXISTS \(b.q(b.schema)).\(b.q(op.name))"], concurrently: true)
    }
}
