import Manifest

/// `drop_constraint` and `drop_multicolumn_constraint`, as pgroll runs them. For a check or a foreign key, every
/// column it names gets a twin (`_teal_new_<column>`) without it, which the new shape sees under the column's name:
/// the new release may write what the constraint refused, while the old release keeps the constraint on its own
/// columns. `up` (default: the column) fills the twin from old-shape writes and existing rows; `down` (default:
/// the twin) carries new-shape writes back, and must give values the constraint accepts. Complete drops the
/// constraint, puts the old columns aside and renames the twins into place, carrying the columns' other indexes,
/// checks and keys (PGTwinColumn.swift). Any other constraint (unique, primary key, exclusion), and a check or key
/// on a primary-key column, is kept on both shapes while both run and dropped at complete.
struct PGDropConstraint: PostgresOperation {
    var table: String
    var name: String
    /// Per column (new-shape name); a single-column `drop_constraint` gives its `up`/`down` to its one column.
    var up: [String: String] = [:]
    var down: [String: String] = [:]
    var single: (up: String?, down: String?)? = nil

    func plan(_ b: inout PlanBuilder) throws {
        let t = try b.table(table)
        let columns: [String]
        if let check = b.catalog.checks?.first(where: { $0.table == t.physical && $0.name == name }) {
            columns = check.columns
        } else if b.catalog.foreignKeys?.contains(where: { $0.table == t.physical && $0.name == name }) == true {
            columns = t.columns.map(\.physical).filter { c in b.catalog.foreignKeys(from: t.physical, naming: c).contains { $0.name == name } }
        } else {
            columns = []
        }
        let primaryKey = b.catalog.table(t.physical)?.primaryKey ?? []
        let twinned = columns.filter { c in t.columns.contains { $0.physical == c } && !primaryKey.contains(c) }
        var contract: [String] = []
        if !twinned.isEmpty && twinned.count == columns.count {
            for physical in twinned {
                let shapeColumn = t.columns.first { $0.physical == physical }!
                let old = b.physical(t.physical, physical)!
                let twin = b.helper("new", physical)
                b.plan.newShape.update(table) { t in
                    if let i = t.columns.firstIndex(where: { $0.physical == physical }) { t.columns[i] = Shape.Column(name: shapeColumn.name, physical: twin) }
                }
                var statements = ["ALTER TABLE \(b.qt(t.physical)) ADD COLUMN IF NOT EXISTS \(b.q(twin)) \(try PGColumnSQL.type(old.type))"]
                if let d = old.defaultSQL { statements.append("ALTER TABLE \(b.qt(t.physical)) ALTER COLUMN \(b.q(twin)) SET DEFAULT \(d)") }
                let nn = b.helper("nn", physical)
                if old.notNull { statements.append(b.addConstraint(t.physical, nn, "CHECK (\(b.q(twin)) IS NOT NULL) NOT VALID")) }
                // The old column takes new-shape inserts, which fill it only through `down`.
                if old.notNull { statements.append("ALTER TABLE \(b.qt(t.physical)) ALTER COLUMN \(b.q(physical)) DROP NOT NULL") }
                b.expand(t.physical, statements)
                let upSQL = (single?.up ?? up[shapeColumn.name]) ?? b.q(physical)
                b.up(t.physical, twin, upSQL)
                b.backfill(t.physical, twin, upSQL)
                b.down(t.physical, physical, (single?.down ?? down[shapeColumn.name]) ?? b.q(shapeColumn.name))
                b.putAsideColumn(t.physical, physical)
                b.reopenTwin(table: t.physical, column: physical, twin: twin)
                if old.notNull { contract += b.setNotNull(t.physical, shapeColumn.name, check: nn) }
                contract += try b.carryIndexes(table: t.physical, column: physical, twin: twin, finalName: shapeColumn.name, except: name)
                var undo = ["ALTER TABLE IF EXISTS \(b.qt(t.physical)) DROP COLUMN IF EXISTS \(b.q(twin))"]
                if old.notNull { undo = b.setNotNull(t.physical, physical, check: b.helper("nnold", physical)) + undo }
                b.undo(t.physical, undo)
            }
        }
        b.contract(t.physical, phase: 0, ["ALTER TABLE IF EXISTS \(b.qt(t.physical)) DROP CONSTRAINT IF EXISTS \(b.q(name))"])
        if !contract.isEmpty { b.contract(t.physical, phase: 2, contract) }
        b.refuseReopen("complete dropped constraint \(name) of \(table), and rows written since may break it; declare it again in a new migration")
    }
}
