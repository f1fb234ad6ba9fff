import Manifest

/// `add_column`: a physical column at start (nullable; NOT NULL, checks and foreign keys as NOT VALID
/// constraints, UNIQUE as an index built concurrently), filled for old-shape writes and existing rows from `up`.
/// Complete validates and declares them. Rollback renames the column aside when it has no `up` (its values
/// exist nowhere else) and drops it otherwise; the next start brings kept values back.
struct PGAddColumn: PostgresOperation {
    var op: AddColumn

    func plan(_ b: inout PlanBuilder) throws {
        let t = try b.table(op.table)
        let c = op.column
        guard t.column(c.name) == nil else { throw PlanError("column \(op.table).\(c.name) already exists") }
        guard !c.primaryKey else { throw PlanError("add_column cannot add a primary key column (\(op.table).\(c.name)); use create_constraint") }
        let physical = b.physicalExists(t.physical, c.name) ? b.helper("new", c.name) : c.name
        let kept = b.helper("kept", c.name)
        b.plan.newShape.update(op.table) { $0.columns.append(Shape.Column(name: c.name, physical: physical)) }

        var column = c
        column.name = physical
        var add = "ALTER TABLE \(b.qt(t.physical)) ADD COLUMN IF NOT EXISTS \(try PGColumnSQL.definition(column, in: b, withConstraints: false))"
        // A constant default is stored once (no rewrite); anything else is set after the column exists.
        let constantDefault = c.default.map(Self.isConstant) ?? false
        if let d = c.default, constantDefault { add += " DEFAULT \(d)" }
        var statements = [b.renameColumn(t.physical, kept, physical), add]
        if let d = c.default, !constantDefault {
            statements.append("ALTER TABLE \(b.qt(t.physical)) ALTER COLUMN \(b.q(physical)) SET DEFAULT \(d)")
        }
        let notNull = b.helper("nn", c.name)
        if !c.nullable && (op.up != nil || c.default != nil) {
            statements.append(b.addConstraint(t.physical, notNull, "CHECK (\(b.q(physical)) IS NOT NULL) NOT VALID"))
        }
        let checkName = c.check?.name ?? "\(t.physical)_\(c.name)_check"
        if let check = c.check, physical == c.name {
            statements.append(b.addConstraint(t.physical, checkName, "CHECK (\(check.constraint)) NOT VALID"))
        }
        let fkName = c.references?.name ?? "\(t.physical)_\(c.name)_fkey"
        if let r = c.references {
            let target = try b.table(r.table)
            let targetColumn = try r.column.map { try b.column(r.table, $0).1.physical }
            var def = "FOREIGN KEY (\(b.q(physical))) REFERENCES \(b.qt(target.physical))" + (targetColumn.map { " (\(b.q($0)))" } ?? "")
            if let d = r.onDelete { def += " ON DELETE \(try b.keyword(d, PlanBuilder.actions))" }
            if let u = r.onUpdate { def += " ON UPDATE \(try b.keyword(u, PlanBuilder.actions))" }
            statements.append(b.addConstraint(t.physical, fkName, def + " NOT VALID"))
        }
        if let comment = c.comment { statements.append("COMMENT ON COLUMN \(b.qt(t.physical)).\(b.q(physical)) IS \(b.lit(comment))") }
        b.expand(t.physical, statements)
        let uniqueIndex = b.helper("uq", c.name)
        if c.unique {
            b.expandConcurrently(t.physical, index: uniqueIndex,
                                 "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \(b.q(uniqueIndex)) ON \(b.qt(t.physical)) (\(b.q(physical)))")
        }
        if let up = op.up {
            b.up(t.physical, physical, up)
            b.backfill(t.physical, physical, up)
        }

        // Complete: validate, then declare under the final names.
        var contract: [String] = []
        if !c.nullable {
            contract += b.setNotNull(t.physical, physical, check: notNull)
        }
        if c.check != nil {
            if physical != c.name, let check = c.check {
                contract.append(b.addConstraint(t.physical, checkName, "CHECK (\(check.constraint)) NOT VALID"))
            }
            contract.append(b.when(b.constraintExists(t.physical, checkName), "ALTER TABLE \(b.qt(t.physical)) VALIDATE CONSTRAINT \(b.q(checkName));"))
        }
        if c.references != nil {
            contract.append(b.when(b.constraintExists(t.physical, fkName), "ALTER TABLE \(b.qt(t.physical)) VALIDATE CONSTRAINT \(b.q(fkName));"))
        }
        if c.unique {
            let name = "\(t.physical)_\(c.name)_key"
            contract.append(b.when("to_regclass(\(b.lit("\(b.q(b.schema)).\(b.q(uniqueIndex))"))) IS NOT NULL AND NOT \(b.constraintExists(t.physical, name))",
                                   "ALTER TABLE \(b.qt(t.physical)) ADD CONSTRAINT \(b.q(name)) UNIQUE USING INDEX \(b.q(uniqueIndex));"))
        }
        if !contract.isEmpty { b.contract(t.physical, phase: 2, contract) }

        // Rollback, in reverse: constraints and index go, then the column (aside when only it holds its values).
        var undo = [
            "ALTER TABLE IF EXISTS \(b.qt(t.physical)) DROP CONSTRAINT IF EXISTS \(b.q(notNull))",
            "ALTER TABLE IF EXISTS \(b.qt(t.physical)) DROP CONSTRAINT IF EXISTS \(b.q(checkName))",
            "ALTER TABLE IF EXISTS \(b.qt(t.physical)) DROP CONSTRAINT IF EXISTS \(b.q(fkName))",
        ]
        if op.up == nil {
            undo += [b.when("\(b.columnExists(t.physical, physical)) AND \(b.columnExists(t.physical, kept))",
                            "ALTER TABLE \(b.qt(t.physical)) DROP COLUMN \(b.q(kept));"),
                     b.renameColumn(t.physical, physical, kept)]
        } else {
            undo.append("ALTER TABLE IF EXISTS \(b.qt(t.physical)) DROP COLUMN IF EXISTS \(b.q(physical))")
        }
        b.undo(t.physical, undo)
        if c.unique { b.undo(t.physical, ["DROP INDEX CONCURRENTLY IF EXISTS \(b.q(b.schema)).\(b.q(uniqueIndex))"], concurrently: true) }
    }

    /// A literal (number, string, boolean, NULL), with an optional cast to a type.
    static func isConstant(_ sql: String) -> Bool {
        var s = sql.trimmingCharacters(in: .whitespaces)
        if let r = s.range(of: "::") { s = String(s[..<r.lowerBound]) }
        if s.count >= 2, s.hasPrefix("'"), s.hasSuffix("'") {
            return !s.dropFirst().dropLast().replacingOccurrences(of: "''", with: "").contains("'")
        }
        if ["true", "false", "null"].contains(s.lowercased()) { return true }
        return Double(s) != nil
    }
}
