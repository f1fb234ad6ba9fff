// Undoing a complete ("reopen")
// ==============================
// Complete puts the old shape's columns and tables aside instead of dropping them (Retention.swift), so within the
// retention window a `git revert` of the commit that finished a migration can bring the old shape back: the
// migration is in flight again, exactly as after its start, with both shapes served from today's rows.
//
// Reopen runs the plan's `reopen` steps (MigrationPlan: tables and columns renamed back, what was put aside back in
// place, renamed constraints and dropped indexes back), installs the triggers again, makes the old shape's version
// schema again, and computes the old-shape columns the new shape fills through `down` for the rows written since
// complete (told by their transaction ids against the oldest one that could write without the triggers, which
// complete records), in key batches like a start's backfill, with the cursor saved so a cut-off reopen resumes;
// rows untouched since keep what complete put aside. The up triggers come last, so that no write of a session in
// no shape carries a stale old value into the new shape. Constraints the reopen put back `NOT VALID` that were
// validated before complete are validated again last, each in a transaction of its own.
//
// The state is durable: the reopen's first transaction records the migration `reopening` (and restarts the
// retention window, so no purge takes what is coming back); it turns `started` only at the very end, in the
// transaction that forgets what was aside. A reopen cut off anywhere is finished by running it again, or, when
// the old shape is no longer asked for, undone by `complete` (complete's steps again: the migration is completed
// as it was, with the rows written meanwhile); one that fails for good does the latter itself.
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
        let (state, migration, catalog) = try await load(s, name)
        let plan = try self.plan(migration, catalog)
        if !plan.reopenRefusals.isEmpty { return plan.reopenRefusals.joined(separator: "; ") }
        if let blocker = try await writtenSince(s, name).blocker { return blocker }
        guard plan.asideColumns > 0 || !plan.droppedTables.isEmpty else { return nil }
        guard try await s.value("SELECT to_regclass('teal.aside')::text") != nil else { return "nothing it put aside is recorded" }
        let row = try await s.rows("""
            SELECT count(*) FILTER (WHERE kind = 'column')::text, count(*) FILTER (WHERE kind = 'table')::text,
                   coalesce((min(put_aside_at) + make_interval(secs => $3::float8) <= now())::text, 'false')
            FROM teal.aside WHERE schema_name = $1 AND migration = $2
            """, [schema, name, String(options.retention)]).first ?? []
        let columns = Int(row.first.flatMap { $0 } ?? "0") ?? 0
        let tables = Int(row.count > 1 ? row[1] ?? "0" : "0") ?? 0
        if columns < plan.asideColumns || tables < plan.droppedTables.count {
            return "what its complete put aside was purged once the retention window (\(Self.describe(options.retention))) passed"
        }
        // A reopen under way restarted the window and keeps the purge off: it can always be finished.
        if row.count > 2, row[2] == "true", state != .reopening {
            return "the retention window (\(Self.describe(options.retention))) has passed since its complete; what it put aside is being purged"
        }
        return nil
    }

    /// Where rows written since complete begin: the oldest transaction id that could write without the triggers, as
    /// complete recorded it; nil with the reason when it cannot tell them.
    func writtenSince(_ s: PostgresSession, _ name: String) async throws -> (xmin: Int64?, blocker: String?) {
        guard try await s.value("""
            SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('teal.migrations') AND attname = 'complete_xmin' AND NOT attisdropped
            """) != nil else { return (nil, "it was completed by a teal that did not record which rows change after complete") }
        let row = try await s.rows("""
            SELECT complete_xmin::text, (txid_snapshot_xmax(txid_current_snapshot()) - complete_xmin)::text
            FROM teal.migrations WHERE schema_name = $1 AND name = $2
            """, [schema, name]).first
        guard let xmin = row?[0].flatMap({ Int64($0) }) else {
            return (nil, "it was completed by a teal that did not record which rows change after complete")
        }
        // Row versions carry 32-bit transaction ids: beyond 2^31 transactions since, old and new ones look alike.
        if let distance = row?[1].flatMap({ Int64($0) }), distance >= 2_000_000_000 {
            return (nil, "\(distance) transactions ran since its complete, too many to tell the rows written since")
        }
        return (xmin, nil)
    }

    static func describe(_ seconds: TimeInterval) -> String { DurationParser.format(.milliseconds(Int64(seconds * 1000))) }

    /// The `teal.backfill` key of a reopen's batches (apart from the start's, which complete forgot).
    static func reopenFillKey(_ name: String) -> String { "\(name) (reopen)" }

    /// Undoes the complete of `name`, the last completed migration: its old shape is back beside the new one,
    /// computed from today's rows, and the migration is started (in flight) again. Does nothing when it is in
    /// flight already; refuses (`reopenBlocker`) where the complete cannot be undone; finishes a reopen cut off
    /// earlier. `progress` hears rows done and total while the old shape's columns are filled, table by table;
    /// `shouldStop` is asked between those batches, and when it answers true the reopen stops within one batch,
    /// `reopening`, for a later reopen to resume from its saved cursor or a complete to undo, and throws.
    public func reopen(_ name: String, progress: (@Sendable (_ done: Int, _ total: Int) -> Void)? = nil,
                       shouldStop: (@Sendable () -> Bool)? = nil) async throws {
        try await withSession(lock: true) { s in
            try await self.ensureStateTables(s)
            let status = try await self.history(s)
            let (state, migration, catalog) = try await self.load(s, name)
            switch state {
            case .started, .backfilling: return
            case .rolledBack: throw SchemaError(migration: name, "was rolled back; there is no complete to undo")
            case .completed, .reopening: break
            }
            if let other = status.inFlight {
                throw SchemaError(migration: name, "migration \(other.name) is in flight on \(self.settings); roll it back before reopening \(name)")
            }
            if let why = try await self.reopenBlocker(s, status, name) {
                throw SchemaError(migration: name, "its complete cannot be undone: \(why)")
            }
            let plan = try self.plan(migration, catalog)
            guard let since = try await self.writtenSince(s, name).xmin else { throw SchemaError(migration: name, "its complete cannot be undone") }
            // Recorded before anything changes, so that a reopen cut off anywhere is seen, and finished or undone.
            // The window starts again, so that no purge takes what is coming back.
            try await s.transaction {
                try await s.exec("UPDATE teal.migrations SET state = 'reopening' WHERE schema_name = $1 AND name = $2", [self.schema, name])
                try await s.exec("UPDATE teal.aside SET put_aside_at = now() WHERE schema_name = $1 AND migration = $2", [self.schema, name])
            }
            if state == .reopening { self.logger.info("finishing a reopen cut off earlier", metadata: ["migration": "\(name)"]) }
            // A fill cursor is only good while the triggers it relied on are there (a reopen cut off after them).
            let downTriggers = try await s.value("SELECT count(*)::text FROM pg_trigger WHERE tgname = $1",
                                                 [DualWriteSQL.triggerName(plan, .down)]) ?? "0"
            if downTriggers == "0" { try await self.forgetFillCursor(s, name) }
            do {
                try await self.reopen(s, plan, migration, since: since, progress: progress, shouldStop: shouldStop)
            } catch let error as SchemaError where error.isTransient || error.isInterruption {
                throw error.locatedIn(migration)
            } catch is CancellationError {
                // Left `reopening`, like an interruption: the next pass finishes or undoes it.
                throw SchemaError(migration: name, interruption: "the reopen was cancelled; reopen again to resume, or complete to undo the reopen")
            } catch {
                let cause = (error as? SchemaError ?? SchemaError(PostgresSession.message(of: error))).locatedIn(migration)
                self.logger.error("reopen failed; completing again", metadata: ["migration": "\(name)", "error": "\(cause)"])
                do {
                    try await self.completeAgain(s, plan, migration)
                } catch {
                    // Still `reopening`: a transient fault here (a lock, the connection) is retried, and the retry
                    // fails the same way and completes again.
                    var failure = SchemaError(migration: name, "\(cause.message); completing it again failed too: \(PostgresSession.message(of: error))")
                    failure.isTransient = (error as? SchemaError)?.isTransient ?? false
                    throw failure
                }
                throw cause
            }
            try await s.transaction {
                try await s.exec("DELETE FROM teal.aside WHERE schema_name = $1 AND migration = $2", [self.schema, name])
                try await s.exec("DELETE FROM teal.backfill WHERE schema_name = $1 AND migration = $2", [self.schema, Self.reopenFillKey(name)])
                try await s.exec("UPDATE teal.migrations SET state = 'started', completed_at = NULL, complete_xmin = NULL WHERE schema_name = $1 AND name = $2",
                                 [self.schema, name])
            }
            self.logger.info("reopened", metadata: ["migration": "\(name)"])
        }
    }

    private func forgetFillCursor(_ s: PostgresSession, _ name: String) async throws {
        try await s.exec("DELETE FROM teal.backfill WHERE schema_name = $1 AND migration = $2", [schema, Self.reopenFillKey(name)])
    }

    /// Returns a migration whose reopen was cut off or failed to `completed`: complete's steps again (each one
    /// idempotent), what it puts aside recorded (still recorded from the first complete, the window restarted by
    /// the reopen), the reopen's fill cursor forgotten. The rows keep every write made meanwhile.
    func completeAgain(_ s: PostgresSession, _ plan: MigrationPlan, _ migration: Migration) async throws {
        // First: complete drops the down triggers table by table, and a fill cursor is only good while they carry
        // the new shape's writes (a later reopen would skip rows written meanwhile below it).
        try await forgetFillCursor(s, migration.name)
        try await contract(s, plan, migration)
        try await s.transaction {
            try await self.recordAside(s, plan)
            try await s.exec("UPDATE teal.migrations SET state = 'completed' WHERE schema_name = $1 AND name = $2", [self.schema, migration.name])
        }
    }

    /// Constraints the reopen declared again `NOT VALID` that were validated before complete: validated again, each
    /// in a DDL transaction of its own (under the lock timeout, retried), once every row holds its old-shape values.
    private func validateReopened(_ s: PostgresSession, _ plan: MigrationPlan, _ migration: Migration) async throws {
        for step in plan.reopenValidations { try await runLocated(s, step, migration) }
    }

    private func reopen(_ s: PostgresSession, _ plan: MigrationPlan, _ migration: Migration, since: Int64,
                        progress: (@Sendable (Int, Int) -> Void)?, shouldStop: (@Sendable () -> Bool)?) async throws {
        for step in plan.reopenInOrder { try await runLocated(s, step, migration) }
        // New-shape writes are carried back from here on; old-shape writes (sessions of no shape) only once the old
        // columns are filled, so that no stale old value is carried up into the new shape.
        var downOnly = plan
        downOnly.dualWrites = plan.dualWrites.mapValues { DualWrite(table: $0.table, up: [], down: $0.down) }
        try await installTriggers(s, downOnly)
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
            guard let table = catalog.table(write.table) else { continue }
            let fill = DualWriteSQL.reverseFill(plan, write, table: table, since: since)
            guard !fill.isEmpty else { continue }
            var runner = BackfillRunner(session: s, schema: schema, migration: Self.reopenFillKey(plan.migration), table: table,
                                        assignments: fill, options: options, logger: logger)
            runner.kind = "filling the old shape"
            runner.named = plan.migration
            runner.resume = "reopen again to resume, or complete to undo the reopen"
            // Rows untouched since complete are passed over, not rewritten: a new row version would count as written
            // since, and a later reopen (after this one is cut off and completed again) would give it `down`.
            runner.only = DualWriteSQL.writtenSince(plan, write, since: since)
            try await runner.run(progress: progress, shouldStop: shouldStop)
        }
        try await installTriggers(s, plan)
        try await validateReopened(s, plan, migration)
    }
}

extension DualWriteSQL {
    /// The `down` assignments of `write` as a batch UPDATE on the table can run them: each expression, written over
    /// the new shape's names, reads the row's physical columns under those names.
    ///
    /// Only rows written since complete get them: a row version whose transaction id is `since` or later (as
    /// 32-bit ids compare, which `writtenSince` keeps valid); every other row keeps the value complete put aside,
    /// which `down` may not give back (a constant, a lossy expression). The value is cast to the column's type, as
    /// the trigger's assignment does.
    /// Whether a row of `write`'s table was written since `since`: its version's transaction id is `since` or later,
    /// as 32-bit ids compare (ids below 3 are special: frozen, bootstrap).
    static func writtenSince(_ plan: MigrationPlan, _ write: DualWrite, since: Int64) -> String {
        let table = "\(Identifiers.quote(plan.schema)).\(Identifiers.quote(write.table))"
        let since32 = since & 0xFFFF_FFFF
        return "(\(table).xmin::text::bigint >= 3 AND (\(table).xmin::text::bigint - \(since32) + 4294967296) % 4294967296 < 2147483648)"
    }

    static func reverseFill(_ plan: MigrationPlan, _ write: DualWrite, table physical: Catalog.Table, since: Int64) -> [Assignment] {
        guard let t = plan.newShape.tables.first(where: { $0.physical == write.table }) else { return [] }
        let table = "\(Identifiers.quote(plan.schema)).\(Identifiers.quote(write.table))"
        let written = writtenSince(plan, write, since: since)
        return write.down.compactMap { a in
            guard let type = physical.column(a.target)?.type else { return nil }
            let named = t.columns.filter { mentions(a.expression, $0.name) }
            let row = named.isEmpty ? "SELECT 1"
                : "SELECT " + named.map { "\(table).\(Identifiers.quote($0.physical)) AS \(Identifiers.quote($0.name))" }.joined(separator: ", ")
            let value = "CAST((SELECT (\(a.expression)) FROM (\(row)) AS _teal_row) AS \(type))"
            return Assignment(target: a.target, expression: "CASE WHEN \(written) THEN \(value) ELSE \(table).\(Identifiers.quote(a.target)) END",
                              operation: a.operation)
        }
    }
}
