// Two shapes of one PostgreSQL database at once
// ==============================================
// As in pgroll, each migration's shape is a *version schema*, `<schema>_<migration>`, holding one view per table
// (`security_invoker`, simple enough to be updatable), which maps the names that migration's release uses to the
// physical table and columns in the app schema. A color's `DATABASE_URL` puts its version schema alone on its
// `search_path` and sets `teal.shape` to its migration at connect (the `options` startup parameter), so every
// session of that color reads and writes its own shape, and teal's triggers know which shape wrote a row.
//
// * The physical table keeps the old shape's columns while both run. A column the new shape adds is a physical
//   column; one it drops stays until complete; one whose type or constraints change gets a twin,
//   `_teal_new_<column>`; renames are only in the new views until complete renames the physical column.
// * Values cross between shapes in BEFORE ROW triggers that assign `NEW` (no second write, no loops): the "up"
//   trigger fires for writes from any session not in the new shape and computes the new shape's columns from
//   `up`; the "down" trigger fires for writes in the new shape and computes the old shape's columns from
//   `down`. Their `WHEN` clauses test `teal.shape`, so a write pays only for its own direction and the
//   backfill (which sets `teal.shape = backfill` and writes the values itself) pays for none; the UPDATE
//   triggers fire only when the statement changed a column their expressions read (by its text form), and test
//   that before `teal.shape`. Each function declares only the columns its expressions name.
// * While a table's backfill runs, it has the INSERT triggers only: any row UPDATE trigger, even one whose `WHEN`
//   is false, costs every backfilled row a row lock. A statement trigger marks that the old shape updated the
//   table meanwhile; the UPDATE triggers come when the backfill ends (dropping the mark's trigger in the same
//   transaction), and then, only if the mark was taken, a catch-up fills again every row whose version no batch
//   wrote (each batch records its transaction id). The version schema is made after that, so no release reads the
//   new shape before every row has its values. A table whose filled columns carry an index or a constraint keeps
//   every trigger during its backfill instead (a stale value there could fail another write), as does one with
//   partitions or children (statement triggers are not cloned onto them).
// * Constraints of the new shape go in `NOT VALID` (checks, foreign keys, NOT NULL as a check) or as indexes
//   built `CONCURRENTLY` at start, and are validated, or attached `USING INDEX`, at complete.
// * Rollback keeps what only the new shape could hold: an added column without `up` is renamed aside
//   (`_teal_kept_<tag>_<column>`), a created table moves to the migration's kept schema `teal_kept_<tag>`; starting the migration
//   again brings them back. Complete renames dropped columns aside (`_teal_dropped_<tag>_<column>`) and moves
//   dropped tables to `teal_kept_<tag>`, instead of dropping them; they are purged once the retention window
//   has passed (Retention.swift).
// * A version schema's views get their base tables' privileges, and the schema USAGE for every role holding any
//   (VersionSchemaGrants.swift).
// * Every step is idempotent (IF [NOT] EXISTS, guarded DO blocks), each DDL transaction takes one table under
//   `lock_timeout`, and the plan is a pure function of the catalog read at the first start (stored with the
//   migration) and the definition, so a start, complete or rollback interrupted anywhere is finished by
//   running it again.

import Foundation
import Manifest

/// One unit of work: statements in one transaction on one table, or one statement that must run outside any
/// transaction (`CREATE INDEX CONCURRENTLY`).
struct PlanStep: Sendable, Hashable {
    var table: String?
    var statements: [String]
    var concurrently = false
    /// The operation it comes from, for errors.
    var operation: Int
    /// Complete's order: 0 puts old things aside, 1 renames columns into place, 2 declares constraints, 3 renames tables.
    var phase = 0
    /// For a concurrent index: its name, so a build left invalid is dropped and done again.
    var index: String?
    /// No `statement_timeout` (the lock timeout stays): a lone `VALIDATE CONSTRAINT`, which lets writers on (SHARE
    /// UPDATE EXCLUSIVE) and takes as long as the table is large.
    var unbounded = false
    /// A user's SQL (`sql`), run statement by statement as written, never folded into a DO block.
    var raw = false
}

/// A value computed in a trigger or by the backfill: `target` (a physical column) := `expression`.
struct Assignment: Sendable, Hashable {
    var target: String
    var expression: String
    var operation: Int
}

/// The triggers of one physical table: `up` runs for writes in the old shape, `down` for writes in the new one.
struct DualWrite: Sendable, Hashable {
    var table: String
    var up: [Assignment] = []
    var down: [Assignment] = []
}

/// Existing rows of a table get `assignments` (over the old shape's columns), in primary-key batches.
struct Backfill: Sendable, Hashable {
    var table: String
    var assignments: [Assignment]
}

struct MigrationPlan: Sendable {
    var schema: String
    var migration: String
    var tag: String
    var oldShape: Shape
    var newShape: Shape
    var expand: [PlanStep] = []
    var dualWrites: [String: DualWrite] = [:]
    var backfills: [String: [Assignment]] = [:]
    var contract: [PlanStep] = []
    var undo: [PlanStep] = []
    /// Tables complete moves to the kept schema instead of dropping them (their physical names).
    var droppedTables: [String] = []
    /// Undoing complete (see Reopen.swift), in order: tables renamed back (0), columns renamed back (1), what was put
    /// aside back in place (2), the rest (3). Empty `reopenRefusals` means the complete can be undone.
    var reopen: [PlanStep] = []
    var reopenRefusals: [String] = []
    /// After the reopen: constraints it declared again `NOT VALID` that were validated before complete, validated
    /// again, each in a transaction of its own.
    var reopenValidations: [PlanStep] = []
    /// How many columns complete puts aside (`_teal_dropped_<tag>_...`), each a row of `teal.aside`.
    var asideColumns = 0

    /// Plans `migration` over `catalog` (the app schema before it started).
    static func make(_ migration: Migration, catalog: Catalog, schema: String) throws -> MigrationPlan {
        var b = PlanBuilder(schema: schema, migration: migration, catalog: catalog)
        for (i, op) in migration.operations.enumerated() {
            b.index = i
            b.kind = op.kind
            do {
                try PostgresOperations.of(op).plan(&b)
            } catch let error as PlanError {
                throw PlanError(operation: i, kind: op.kind, error.message)
            }
        }
        b.settle()
        return b.plan
    }

    /// The version schema serving `migration`'s shape.
    static func versionSchema(schema: String, migration: String) -> String {
        String("\(schema)_\(migration)".prefix(63))
    }

    var versionSchema: String { Self.versionSchema(schema: schema, migration: migration) }

    /// Tables with a dual write, for the triggers.
    var dualWriteTables: [DualWrite] {
        dualWrites.keys.sorted().compactMap { dualWrites[$0] }.filter { !$0.up.isEmpty || !$0.down.isEmpty }
    }

    var contractInOrder: [PlanStep] {
        contract.enumerated().sorted { ($0.element.phase, $0.offset) < ($1.element.phase, $1.offset) }.map(\.element)
    }

    var reopenInOrder: [PlanStep] {
        reopen.enumerated().sorted { ($0.element.phase, $0.offset) < ($1.element.phase, $1.offset) }.map(\.element)
    }
}

struct PlanError: Error, Sendable, CustomStringConvertible {
    var operation: Int?
    var kind: String?
    var message: String
    init(operation: Int? = nil, kind: String? = nil, _ message: String) { self.operation = operation; self.kind = kind; self.message = message }
    var description: String { operation.map { "operations[\($0)] (\(kind ?? "")): \(message)" } ?? message }
}

/// An operation, as PostgreSQL runs it: it adds its steps, triggers and backfill to the plan and changes the new shape.
protocol PostgresOperation {
    func plan(_ b: inout PlanBuilder) throws
}

/// Accumulates a plan while each operation adds to it; knows the catalog and the new shape so far.
struct PlanBuilder {
    let schema: String
    let migration: Migration
    let catalog: Catalog
    var plan: MigrationPlan
    var index = 0
    var kind = ""

    init(schema: String, migration: Migration, catalog: Catalog) {
        self.schema = schema
        self.migration = migration
        self.catalog = catalog
        let shape = Shape(catalog)
        plan = MigrationPlan(schema: schema, migration: migration.name, tag: Self.tag(migration.name), oldShape: shape, newShape: shape)
    }

    /// A short stable name of the migration for teal's helper objects (FNV-1a, 8 hex digits).
    static func tag(_ name: String) -> String {
        var h: UInt32 = 2166136261
        for b in name.utf8 { h = (h ^ UInt32(b)) &* 16777619 }
        return String(format: "%08x", h)
    }

    var tag: String { plan.tag }

    // MARK: names

    func q(_ identifier: String) -> String { Identifiers.quote(identifier) }
    /// A physical table, schema-qualified and quoted.
    func qt(_ table: String) -> String { "\(q(schema)).\(q(table))" }
    /// A SQL string literal.
    func lit(_ s: String) -> String { Identifiers.literal(s) }
    /// A helper object's name, within PostgreSQL's 63 bytes.
    func helper(_ prefix: String, _ name: String) -> String {
        String(decoding: Array("_teal_\(prefix)_\(tag)_\(name)".utf8.prefix(63)), as: UTF8.self)
    }

    // MARK: the new shape so far

    func table(_ name: String) throws -> Shape.Table {
        guard let t = plan.newShape.table(name) else { throw PlanError("table \(name) does not exist in the shape this migration starts from") }
        return t
    }

    func column(_ table: String, _ name: String) throws -> (Shape.Table, Shape.Column) {
        let t = try self.table(table)
        guard let c = t.column(name) else { throw PlanError("column \(table).\(name) does not exist") }
        return (t, c)
    }

    /// The catalog's facts about a physical column (nil for one this migration adds).
    func physical(_ table: String, _ column: String) -> Catalog.Column? {
        catalog.table(table)?.column(column)
    }

    /// True when the physical table already has (or this migration gives it) a column named `name`.
    func physicalExists(_ table: String, _ name: String) -> Bool {
        if catalog.table(table)?.column(name) != nil { return true }
        return plan.newShape.tables.first { $0.physical == table }?.columns.contains { $0.physical == name } ?? false
    }

    /// Complete's renames, from the final shape: every column and table whose physical name is not the name the
    /// new shape gives it is renamed, after what the old shape alone had is put aside (phase 0).
    mutating func settle() {
        index = migration.operations.count
        for t in plan.newShape.tables {
            let renames = t.columns.filter { $0.physical != $0.name }
            if !renames.isEmpty {
                contract(t.physical, phase: 1, renames.map { renameColumn(t.physical, $0.physical, $0.name) })
            }
        }
        for t in plan.newShape.tables where t.physical != t.name {
            contract(t.physical, phase: 3, [
                when("to_regclass(\(lit(qt(t.physical)))) IS NOT NULL AND to_regclass(\(lit(qt(t.name)))) IS NULL",
                     "ALTER TABLE \(qt(t.physical)) RENAME TO \(q(t.name));"),
            ])
        }
        // Reopen undoes the same renames in the reverse order (a chain such as a → b with a new a undoes as it was
        // done), tables first, so every later step finds a table under its physical name.
        for t in plan.newShape.tables.reversed() where t.physical != t.name {
            reopen(t.physical, phase: 0, [
                when("to_regclass(\(lit(qt(t.name)))) IS NOT NULL AND to_regclass(\(lit(qt(t.physical)))) IS NULL",
                     "ALTER TABLE \(qt(t.name)) RENAME TO \(q(t.physical));"),
            ])
        }
        for t in plan.newShape.tables {
            let renames = t.columns.filter { $0.physical != $0.name }.reversed()
            if !renames.isEmpty { reopen(t.physical, phase: 1, renames.map { renameColumn(t.physical, $0.name, $0.physical) }) }
        }
    }

    /// The table owning an index, as the catalog read at start knows it.
    func catalogIndexTable(_ name: String) -> String? { catalog.indexes[name] }

    // MARK: adding work

    mutating func expand(_ table: String?, _ statements: [String], raw: Bool = false) {
        plan.expand.append(PlanStep(table: table.map(qt), statements: statements, operation: index, raw: raw))
    }

    mutating func expandConcurrently(_ table: String, index name: String, _ statement: String) {
        plan.expand.append(PlanStep(table: qt(table), statements: [statement], concurrently: true, operation: index, index: name))
    }

    mutating func contract(_ table: String?, phase: Int, _ statements: [String], raw: Bool = false) {
        plan.contract.append(PlanStep(table: table.map(qt), statements: statements, operation: index, phase: phase, raw: raw))
    }

    mutating func contractConcurrently(_ table: String?, _ statement: String) {
        plan.contract.append(PlanStep(table: table.map(qt), statements: [statement], concurrently: true, operation: index, phase: 0))
    }

    /// A step of undoing complete (`MigrationPlan.reopen`).
    mutating func reopen(_ table: String?, phase: Int, _ statements: [String], concurrently: Bool = false, index name: String? = nil) {
        plan.reopen.append(PlanStep(table: table.map(qt), statements: statements, concurrently: concurrently, operation: index, phase: phase,
                                    index: name))
    }

    /// A constraint a reopen declares again `NOT VALID` that was validated before: validated once the reopen is done.
    mutating func validateAfterReopen(_ table: String, _ name: String) {
        let notValidated = "EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(\(lit(qt(table)))) AND conname = \(lit(name)) AND NOT convalidated)"
        plan.reopenValidations.append(PlanStep(table: qt(table), statements: [when(notValidated, "ALTER TABLE \(qt(table)) VALIDATE CONSTRAINT \(q(name));")],
                                               operation: index, unbounded: true))
    }

    /// Check constraints and foreign keys already carried onto a twin in this migration (see `carryIndexes`).
    var carriedConstraints: Set<String> = []

    /// This operation's complete cannot be undone: `why`.
    mutating func refuseReopen(_ why: String) {
        plan.reopenRefusals.append("operations[\(index)] (\(kind)): \(why)")
    }

    /// Complete puts `column` of `table` aside (renamed `_teal_dropped_<tag>_<column>`); reopen renames it back.
    mutating func putAsideColumn(_ table: String, _ column: String) {
        contract(table, phase: 0, [renameColumn(table, column, helper("dropped", column))])
        reopen(table, phase: 2, [renameColumn(table, helper("dropped", column), column)])
        plan.asideColumns += 1
    }

    /// Undo steps run in the reverse order of the operations that added them.
    mutating func undo(_ table: String?, _ statements: [String], concurrently: Bool = false, raw: Bool = false) {
        plan.undo.insert(PlanStep(table: table.map(qt), statements: statements, concurrently: concurrently, operation: index, raw: raw), at: 0)
    }

    mutating func up(_ table: String, _ target: String, _ expression: String) {
        plan.dualWrites[table, default: DualWrite(table: table)].up.append(Assignment(target: target, expression: expression, operation: index))
    }

    mutating func down(_ table: String, _ target: String, _ expression: String) {
        plan.dualWrites[table, default: DualWrite(table: table)].down.append(Assignment(target: target, expression: expression, operation: index))
    }

    mutating func backfill(_ table: String, _ target: String, _ expression: String) {
        plan.backfills[table, default: []].append(Assignment(target: target, expression: expression, operation: index))
    }

    // MARK: shared SQL

    /// `DO` block running `body` when `condition` holds.
    func when(_ condition: String, _ body: String) -> String {
        "DO $teal$ BEGIN IF \(condition) THEN \(body) END IF; END $teal$"
    }

    func columnExists(_ table: String, _ column: String) -> String {
        "EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(\(lit(qt(table)))) AND attname = \(lit(column)) AND NOT attisdropped)"
    }

    func constraintExists(_ table: String, _ name: String) -> String {
        "EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(\(lit(qt(table)))) AND conname = \(lit(name)))"
    }

    /// Adds a constraint unless one of that name is there.
    func addConstraint(_ table: String, _ name: String, _ definition: String) -> String {
        when("NOT \(constraintExists(table, name))", "ALTER TABLE \(qt(table)) ADD CONSTRAINT \(q(name)) \(definition);")
    }

    /// NOT NULL without a long lock: a validated CHECK lets SET NOT NULL skip its scan.
    func setNotNull(_ table: String, _ column: String, check: String) -> [String] {
        [addConstraint(table, check, "CHECK (\(q(column)) IS NOT NULL) NOT VALID"),
         when(constraintExists(table, check), "ALTER TABLE \(qt(table)) VALIDATE CONSTRAINT \(q(check));"),
         "ALTER TABLE \(qt(table)) ALTER COLUMN \(q(column)) SET NOT NULL",
         "ALTER TABLE \(qt(table)) DROP CONSTRAINT IF EXISTS \(q(check))"]
    }

    /// Renames a physical column when it exists and the new name is free.
    func renameColumn(_ table: String, _ from: String, _ to: String) -> String {
        when("\(columnExists(table, from)) AND NOT \(columnExists(table, to))",
             "ALTER TABLE \(qt(table)) RENAME COLUMN \(q(from)) TO \(q(to));")
    }

    func references(_ r: ForeignKeyReference, columnOf table: String) throws -> String {
        let target = try self.table(r.table)
        let column = try r.column.map { name -> String in
            guard let c = target.column(name) else { throw PlanError("references \(r.table).\(name), which does not exist") }
            return c.physical
        }
        var sql = "REFERENCES \(qt(target.physical))" + (column.map { " (\(q($0)))" } ?? "")
        if let m = r.matchType { sql += " MATCH \(try keyword(m, ["SIMPLE", "FULL"]))" }
        if let d = r.onDelete { sql += " ON DELETE \(try keyword(d, Self.actions))" }
        if let u = r.onUpdate { sql += " ON UPDATE \(try keyword(u, Self.actions))" }
        if r.deferrable { sql += " DEFERRABLE" + (r.initiallyDeferred ? " INITIALLY DEFERRED" : "") }
        return sql
    }

    static let actions = ["NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"]

    /// A keyword from a closed list, upper-cased; anything else is refused (it would be pasted into DDL).
    func keyword(_ value: String, _ allowed: [String]) throws -> String {
        let k = value.uppercased().replacingOccurrences(of: "_", with: " ")
        guard allowed.contains(k) else { throw PlanError("'\(value)' must be one of \(allowed.joined(separator: ", "))") }
        return k
    }
}
