import Manifest

/// `rename_constraint`: a name only, which no app reads; renamed at complete.
struct PGRenameConstraint: PostgresOperation {
    var op: RenameConstraint

    func plan(_ b: inout PlanBuilder) throws {
        let t = try b.table(op.table)
        b.contract(t.physical, phase: 2, [b.when("\(b.constraintExists(t.physical, op.from)) AND NOT \(b.constraintExists(t.physical, op.to))",
                                                 "ALTER TABLE \(b.qt(t.physical)) RENAME CONSTRAINT \(b.q(op.from)) TO \(b.q(op.to));")])
        b.reopen(t.physical, phase: 3, [b.when("\(b.constraintExists(t.physical, op.to)) AND NOT \(b.constraintExists(t.physical, op.from))",
                                               "ALTER TABLE \(b.qt(t.physical)) RENAME CONSTRAINT \(b.q(op.to)) TO \(b.q(op.from));")])
    }
}
