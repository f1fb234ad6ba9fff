// Undoing a complete ("reopen")
// ==============================
// Complete puts the old shape's columns and tables aside instead of dropping them (Retention.swift), so within the
// retention window a `git revert` of the commit that finished a migration can bring the old shape back: the
// migration is in flight again, exactly as after its start, with both shapes served from today's rows.
//
// Reopen runs the plan's `reopen` steps (MigrationPlan: tables and columns renamed back, what was put aside back in
// place, renamed constraints and dropped indexes back), installs the triggers again, makes the old shape's version
// schema again, and computes every old-shape column the new shape fills through `down` from the row as it is now
// (rows the new release wrote or changed since complete), in key batches like a start's backfill, with the cursor
// saved so a cut-off reopen resumes. The state turns `started` only at the very end, in the transaction that
// forgets what was aside, so a reopen cut off anywhere is finished by running it again; one that fails for good
// does complete's steps again and leaves the migration completed, as it was.
//
// Refused (the complete stays final) where complete did what cannot be undone without losing or inventing data:
// a dropped constraint (rows written since may break it), SQL run at complete, indexes or keys moved onto a
// changed column; and once the retention window has passed.

import Foundation
import Manifest
import Schema

extension PostgresSchemaEngine {
    /// The history, and why the last completed migration's complete cannot be undone (nil when it can, or when
    /// nothing is completed).
    public func observe() async throws -> (status: SchemaStatus, reopenBlocker: String?) {
        try await withSession(lock: false) { s in
            let status = try await self.history(s)
            guard let last = status.lastCompleted else { return (status, "nothing is completed") }
            do {
                return (status, try await self.reopenBlocker(s, status, last.name))
            } catch {
                return (status, "its definition could not be planned again: \(error)")
            }
        }
    }

    /// Why the complete of `name` cannot be undone now; nil when it can.
    func reopenBlocker(_ s: PostgresSession, _ status: SchemaStatus, _ name: String) async throws -> String? {
        guard status.lastCompleted?.name == name else { return "\(name) is not the last completed migration" }
        let (_, migration, catalog) = try await load(s, name)
        let plan = try self.plan(migration, catalog)
        if !plan.reopenRefusals.isEmpty { return plan.reopenRefusals.joined(separator: "; ") }
        guard plan.asideColumns > 0 || !plan.droppedTables.isEmpty else { return nil }
        guard try await s.value("SELECT to_regclass('teal.aside')::text") != nil else { return "nothing it put aside is recorded" }
        let row = try await s.rows("""
            SELECT count(*) FILTER (WHERE kind = 'column')::text, count(*) FILTER (WHERE kind = 'table')::text,
                   coalesce(extract(epoch FROM min(put_aside_at))::text, '')
            FROM teal.aside WHERE schema_name = $1 AND migration = $2
            """, [schema, name]).first ?? []
        let columns = Int(row.first.flatMap { $0 } ?? "0") ?? 0
        let tables = Int(row.count > 1 ? row[1] ?? "0" : "0") ?? 0
        if columns < plan.asideColumns || tables < plan.droppedTables.count {
            return "what its complete put aside was purged once the retention window (\(Self.describe(options.retention))) passed"
        }
        if let since = row.count > 2 ? row[2].flatMap(Double.init) : nil, since + options.retention <= Date().timeIntervalSince1970 {
            return "the retention window (\(Self.describe(options.retention))) has passed since its complete; what it put aside is being purged"
        }
        return nil
    }

    static func describe(_ seconds: TimeInterval) -> String {
        if seconds >= 86_400, seconds.truncatingRemainder(dividingBy: 86_400) == 0 { return "\(Int(seconds / 86_400))d" }
        if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
        return "\(Int(seconds))s"
    }

    /// The `teal.backfill` key of a reopen's batches (apart from the start's, which complete forgot).
    static func reopenFillKey(_ name: String) -> String { "\(name) (reopen)" }

    /// Undoes the complete of `name`, the last completed migration: its old shape is back beside the new one,
    /// computed from today's rows, and the migration is started (in flight) again. Does nothing when it is in
    /// flight already; refuses (`reopenBlocker`) where the complete cannot be undone.
    public func reopen(_ name: String) async throws {
        try await withSession(lock: true) { s in
            try await self.ensureStateTables(s)
            let status = try await self.history(s)
            let (state, migration, catalog) = try await self.load(s, name)
            switch state {
            case .started, .backfilling: return
            case .rolledBack: throw SchemaError(migration: name, "was rolled back; there is no complete to undo")
            case .completed: break
            }
            if let other = status.inFlight {
                throw SchemaError(migration: name, "migration \(other.name) is in flight on \(self.settings); roll it back before reopening \(name)")
            }
            if let why = try await self.reopenBlocker(s, status, name) {
                throw SchemaError(migration: name, "its complete cannot be undone: \(why)")
            }
            let plan = try self.plan(migration, catalog)
            // The window starts again, so that no purge takes what is coming back, even after a crash half-way.
            try await s.exec("UPDATE teal.aside SET put_aside_at = now() WHERE schema_name = $1 AND migration = $2", [self.schema, name])
            do {
                try await self.reopen(s, plan, migration)
            } catch let error as SchemaError where error.isTransient {
                throw error.locatedIn(migration)
            } catch {
                let cause = (error as? SchemaError ?? SchemaError(PostgresSession.message(of: error))).locatedIn(migration)
                self.logger.error("reopen failed; completing again", metadata: ["migration": "\(name)", "error": "\(cause)"])
                do {
                    try await self.contract(s, plan, migration)
                } catch {
                    throw SchemaError(migration: name, "\(cause.message); completing it again failed too: \(PostgresSession.message(of: error))")
                }
                throw cause
            }
            try await s.transaction {
                try await s.exec("DELETE FROM teal.aside WHERE schema_name = $1 AND migration = $2", [self.schema, name])
                try await s.exec("DELETE FROM teal.backfill WHERE schema_name = $1 AND migration = $2", [self.schema, Self.reopenFillKey(name)])
                try await s.exec("UPDATE teal.migrations SET state = 'started', completed_at = NULL WHERE schema_name = $1 AND name = $2",
                                 [self.schema, name])
            }
            self.logger.info("reopened", metadata: ["migration": "\(name)"])
        }
    }

    private func reopen(_ s: PostgresSession, _ plan: MigrationPlan, _ migration: Migration) async throws {
        for step in plan.reopenInOrder { try await runLocated(s, step, migration) }
        try await installTriggers(s, plan)
        if let previous = try await previousCompleted(s, before: migration) {
            let version = versionSchema(for: previous)
            let views = DualWriteSQL.versionSchema(version, schema: schema, shape: plan.oldShape)
            try await s.ddl(on: nil, options: options) {
                for sql in views { try await s.exec(sql) }
                try await self.grant(s, versionSchema: version)
            }
        }
        // The old shape's columns that the new shape fills through `down`, from the rows as they are now.
        let catalog = try await Catalog.read(s, schema: schema)
        for write in plan.dualWriteTables {
            let fill = DualWriteSQL.reverseFill(plan, write)
            guard !fill.isEmpty, let table = catalog.table(write.table) else { continue }
            try await BackfillRunner(session: s, schema: schema, migration: Self.reopenFillKey(plan.migration), table: table,
                                     assignments: fill, options: options, logger: logger).run(progress: nil, shouldStop: nil)
        }
    }
}

extension DualWriteSQL {
    /// The `down` assignments of `write` as a batch UPDATE on the table can run them: each expression, written over
    /// the new shape's names, reads the row's physical columns under those names.
    static func reverseFill(_ plan: MigrationPlan, _ write: DualWrite) -> [Assignment] {
        guard let t = plan.newShape.tables.first(where: { $0.physical == write.table }) else { return [] }
        let table = "\(Identifiers.quote(plan.schema)).\(Identifiers.quote(write.table))"
        return write.down.map { a in
            let named = t.columns.filter { mentions(a.expression, $0.name) }
            let row = named.isEmpty ? "SELECT 1"
                : "SELECT " + named.map { "\(table).\(Identifiers.quote($0.physical)) AS \(Identifiers.quote($0.name))" }.joined(separator: ", ")
            return Assignment(target: a.target, expression: "(SELECT (\(a.expression)) FROM (\(row)) AS _teal_row)", operation: a.operation)
        }
    }
}
