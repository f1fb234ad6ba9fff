import Foundation
import Logging
import Manifest
import Schema

/// Tuning of the PostgreSQL engine.
public struct PostgresSchemaOptions: Sendable {
    /// How long a DDL statement waits for a table lock before giving up (and trying again).
    public var lockTimeout: TimeInterval
    /// Longest any statement of teal's may run (index builds excepted).
    public var statementTimeout: TimeInterval
    /// How many times a DDL transaction that hit the lock timeout is tried in all.
    public var lockAttempts: Int
    /// Most rows per backfill transaction.
    public var batchSize: Int
    /// Longest a backfill transaction should take; slower batches shrink, faster ones grow up to `batchSize`.
    public var batchDuration: TimeInterval
    /// The backfill pauses while a replica replays more than this far behind.
    public var maxReplicationLag: TimeInterval
    /// How long to wait for another runner's lock on the database before reporting who holds it.
    public var runnerWait: TimeInterval
    /// How long what a completed migration put aside (dropped columns and tables) is kept before it is purged.
    public var retention: TimeInterval

    public static let defaultRetention: TimeInterval = 7 * 86_400

    public init(lockTimeout: TimeInterval = 1, statementTimeout: TimeInterval = 60, lockAttempts: Int = 5,
                batchSize: Int = 10_000, batchDuration: TimeInterval = 0.02, maxReplicationLag: TimeInterval = 2,
                runnerWait: TimeInterval = 10, retention: TimeInterval = PostgresSchemaOptions.defaultRetention) {
        self.retention = max(0, retention)
        self.lockTimeout = lockTimeout
        self.statementTimeout = statementTimeout
        self.lockAttempts = max(1, lockAttempts)
        self.batchSize = max(1, batchSize)
        self.batchDuration = batchDuration
        self.maxReplicationLag = maxReplicationLag
        self.runnerWait = runnerWait
    }

    /// The defaults, with what environment.yaml's `database:` mapping sets (retention, lock and statement timeouts).
    public init(_ database: DatabaseOptions) {
        func seconds(_ d: Duration) -> TimeInterval { Double(d.milliseconds) / 1000 }
        self.init(lockTimeout: seconds(database.lockTimeout), statementTimeout: seconds(database.statementTimeout),
                  retention: seconds(database.retention))
    }
}

/// Runs expand/contract migrations on one PostgreSQL database, with two live shapes served as version schemas
/// (see `MigrationPlan`). Each call opens its own direct connection and holds a session advisory lock on the
/// app schema for its duration, so two agents never run migrations on one database at once.
public final class PostgresSchemaEngine: Sendable {
    public let settings: PostgresSettings
    public let options: PostgresSchemaOptions
    let logger: Logger

    public init(settings: PostgresSettings, options: PostgresSchemaOptions = PostgresSchemaOptions(),
                logger: Logger = Logger(label: "teal.schema.postgres")) {
        self.settings = settings
        self.options = options
        self.logger = logger
    }

    public var schema: String { settings.schema }

    /// The version schema a color written for `migration` uses.
    public func versionSchema(for migration: String) -> String { MigrationPlan.versionSchema(schema: schema, migration: migration) }

    // MARK: status

    public func status() async throws -> SchemaStatus {
        try await withSession(lock: false) { s in try await self.history(s) }
    }

    func history(_ s: PostgresSession) async throws -> SchemaStatus {
        guard try await s.value("SELECT to_regclass('teal.migrations')::text") != nil else { return SchemaStatus(migrations: []) }
        let rows = try await s.rows("""
            SELECT name, checksum, state, definition, extract(epoch FROM started_at)::text,
                   extract(epoch FROM completed_at)::text, extract(epoch FROM rolled_back_at)::text
            FROM teal.migrations WHERE schema_name = $1 ORDER BY number, name
            """, [schema])
        return SchemaStatus(migrations: try rows.map { r in
            let name = r[0] ?? ""
            guard let state = MigrationState(rawValue: r[2] ?? ""),
                  let definition = try? JSONDecoder().decode(Migration.self, from: Data((r[3] ?? "").utf8)) else {
                throw SchemaError(migration: name, "teal.migrations holds a row teal cannot read (state \(r[2] ?? "none"))")
            }
            func date(_ s: String?) -> Date? { s.flatMap(Double.init).map { Date(timeIntervalSince1970: $0) } }
            return AppliedMigration(name: name, checksum: r[1] ?? "", state: state, definition: definition,
                                    startedAt: date(r[4]) ?? Date(), completedAt: date(r[5]), rolledBackAt: date(r[6]))
        })
    }

    // MARK: start

    /// Expands `migration` and backfills existing rows; both shapes are usable when it returns. A start left
    /// half-way (crash, lost connection, interruption) is resumed by calling it again; one already started or
    /// completed does nothing. A permanent failure undoes what the start did.
    public func start(_ migration: Migration, progress: (@Sendable (_ done: Int, _ total: Int) -> Void)? = nil,
                      shouldStop: (@Sendable () -> Bool)? = nil) async throws {
        try await withSession(lock: true) { s in
            try await self.ensureStateTables(s)
            _ = try await self.purgeDue(s, now: nil)
            let existing = try await s.rows("SELECT state, checksum, catalog FROM teal.migrations WHERE schema_name = $1 AND name = $2",
                                            [self.schema, migration.name]).first
            let catalog: Catalog
            if let existing, existing[0] != MigrationState.rolledBack.rawValue {
                if existing[1] != migration.checksum {
                    throw SchemaError(migration: migration.name, "the file changed after it was applied (stored checksum \(existing[1] ?? ""), file \(migration.checksum)); write a new migration instead")
                }
                if existing[0] != MigrationState.backfilling.rawValue {
                    self.logger.info("migration already started", metadata: ["migration": "\(migration.name)"])
                    return
                }
                catalog = try JSONDecoder().decode(Catalog.self, from: Data((existing[2] ?? "").utf8))
                self.logger.info("resuming start", metadata: ["migration": "\(migration.name)"])
            } else {
                let status = try await self.history(s)
                if let other = status.inFlight, other.name != migration.name {
                    throw SchemaError(migration: migration.name, "migration \(other.name) is in flight on \(self.settings); complete or roll it back first")
                }
                if let other = status.migrations.last(where: { $0.state == .reopening }) {
                    throw SchemaError(migration: migration.name, "the reopen of \(other.name) on \(self.settings) was cut off; reopen it again or complete it first")
                }
                catalog = try await Catalog.read(s, schema: self.schema)
                let definition = String(decoding: try JSONEncoder().encode(migration), as: UTF8.self)
                let catalogJSON = String(decoding: try JSONEncoder().encode(catalog), as: UTF8.self)
                _ = try self.plan(migration, catalog) // refuse a migration that does not fit before recording anything
                try await s.exec("""
                    INSERT INTO teal.migrations (schema_name, name, number, checksum, definition, catalog, state, started_at)
                    VALUES ($1, $2, $3::int, $4, $5, $6, 'backfilling', now())
                    ON CONFLICT (schema_name, name) DO UPDATE SET number = EXCLUDED.number, checksum = EXCLUDED.checksum,
                        definition = EXCLUDED.definition, catalog = EXCLUDED.catalog, state = 'backfilling',
                        started_at = now(), completed_at = NULL, rolled_back_at = NULL, complete_xmin = NULL
                    """, [self.schema, migration.name, String(migration.number), migration.checksum, definition, catalogJSON])
            }
            let plan = try self.plan(migration, catalog)
            self.logger.debug("start: recorded", metadata: ["migration": "\(migration.name)"])
            do {
                try await self.expand(s, plan, migration)
                let backfilling = try await self.backfillingTables(s, plan)
                // The tables as expanded (with what raw SQL created); the triggers that follow change none of them.
                let expanded = try await Catalog.read(s, schema: self.schema)
                try await self.backfill(s, plan, migration, expanded, recording: backfilling, progress: progress, shouldStop: shouldStop)
                try await self.installTriggers(s, plan, tables: backfilling)
                try await self.catchUp(s, plan, migration, expanded, shouldStop: shouldStop)
                try await self.createVersionSchema(s, plan, migration, expanded)
                let began = ContinuousClock.now
                try await s.exec("UPDATE teal.migrations SET state = 'started' WHERE schema_name = $1 AND name = $2", [self.schema, migration.name])
                self.logger.debug("start: state updated", metadata: ["phase": "state", "ms": "\(PostgresSession.milliseconds(since: began))"])
            } catch let error as SchemaError where error.isTransient || error.isInterruption {
                throw error.locatedIn(migration)
            } catch {
                let cause = (error as? SchemaError ?? SchemaError(PostgresSession.message(of: error))).locatedIn(migration)
                self.logger.error("start failed; undoing it", metadata: ["migration": "\(migration.name)", "error": "\(cause)"])
                do {
                    try await self.undo(s, plan)
                } catch {
                    throw SchemaError(migration: migration.name, "\(cause.message); undoing the start failed too: \(PostgresSession.message(of: error))")
                }
                throw cause
            }
            self.logger.info("started", metadata: ["migration": "\(migration.name)"])
        }
    }

    func plan(_ migration: Migration, _ catalog: Catalog) throws -> MigrationPlan {
        do {
            return try MigrationPlan.make(migration, catalog: catalog, schema: schema)
        } catch let error as PlanError {
            throw SchemaError(migration: migration.name, operationIndex: error.operation, operationKind: error.kind, error.message)
        }
    }

    /// The plan's steps, then its triggers: the set for the backfill on tables whose backfill is still to run.
    private func expand(_ s: PostgresSession, _ plan: MigrationPlan, _ migration: Migration) async throws {
        for step in plan.expand {
            do {
                try await run(s, step)
            } catch let error as SchemaError {
                let op = migration.operations.indices.contains(step.operation) ? migration.operations[step.operation].kind : nil
                var e = error
                if e.operationIndex == nil { e.operationIndex = step.operation; e.operationKind = op }
                throw e
            }
        }
        let finished = Set(try await s.rows("SELECT table_name FROM teal.backfill WHERE schema_name = $1 AND migration = $2 AND finished",
                                            [schema, migration.name]).compactMap { $0.first ?? nil })
        var backfilling = Set<String>()
        for (table, assignments) in plan.backfills where !assignments.isEmpty && !finished.contains(table) {
            if try await !keepsEveryTrigger(s, table, Set(assignments.map(\.target))) { backfilling.insert(table) }
        }
        try await installTriggers(s, plan, backfilling: backfilling)
    }

    /// True when `table` keeps every trigger while its backfill runs. Either an index or constraint covers one of
    /// `columns`, and a value an old-shape update left stale until the catch-up could fail another write (a unique
    /// index still holding the old value, a foreign key still pointing at a row being deleted); or the table has
    /// partitions or children, whose own statements would not fire its statement trigger (row triggers are
    /// cloned onto partitions, statement triggers are not).
    private func keepsEveryTrigger(_ s: PostgresSession, _ table: String, _ columns: Set<String>) async throws -> Bool {
        let names = columns.sorted().map(Identifiers.literal).joined(separator: ", ")
        let count = try await s.value("""
            SELECT (count(*) + (SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass($1))
                    + (SELECT count(*) FROM pg_class WHERE oid = to_regclass($1) AND relkind = 'p'))::text
            FROM pg_depend d
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
            WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = to_regclass($1) AND a.attname IN (\(names))
              AND (d.classid = 'pg_constraint'::regclass OR c.relkind IN ('i', 'I'))
            """, ["\(Identifiers.quote(schema)).\(Identifiers.quote(table))"])
        return (Int(count ?? "0") ?? 0) > 0
    }

    /// The tables of `plan` that have the set for while their backfill runs (its statement trigger is there).
    private func backfillingTables(_ s: PostgresSession, _ plan: MigrationPlan) async throws -> Set<String> {
        let rows = try await s.rows("""
            SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE t.tgname = $1 AND c.relnamespace = to_regnamespace($2)
            """, [DualWriteSQL.touchedTriggerName(plan), Identifiers.quote(schema)])
        return Set(rows.compactMap { $0.first ?? nil })
    }

    /// The new shape's version schema, made once every row has its values (no release uses the new shape before
    /// start returns), with its grants; the old shape's gets what was granted since its start.
    /// `now`: the tables as the expand left them.
    private func createVersionSchema(_ s: PostgresSession, _ plan: MigrationPlan, _ migration: Migration, _ now: Catalog) async throws {
        // Tables that raw SQL created join the new shape as they are.
        var shape = plan.newShape
        let known = Set(plan.oldShape.tables.map(\.physical) + plan.newShape.tables.map(\.physical))
        for t in now.tables where !known.contains(t.name) && !t.name.hasPrefix("_teal_") {
            shape.tables.append(Shape.Table(name: t.name, physical: t.name, columns: t.visibleColumns.map { .init(name: $0.name, physical: $0.name) }))
        }
        let views = DualWriteSQL.versionSchema(plan.versionSchema, schema: schema, shape: shape)
        let previous = try await previousCompleted(s, before: migration)
        try await s.ddl(on: nil, options: options, label: "version schema") {
            try await s.execAll(views)
            try await self.grant(s, versionSchema: plan.versionSchema)
            // The old shape's version schema, made when its migration started, gets what was granted since.
            if let previous { try await self.grant(s, versionSchema: self.versionSchema(for: previous)) }
        }
    }

    /// The plan's triggers, table by table; on the tables in `backfilling`, the set for while their backfill runs
    /// (see `DualWriteSQL.statements`).
    /// `tables`: only those (all when nil).
    func installTriggers(_ s: PostgresSession, _ plan: MigrationPlan, backfilling: Set<String> = [], tables: Set<String>? = nil) async throws {
        for write in plan.dualWriteTables where tables?.contains(write.table) ?? true {
            // Functions first, in a transaction of their own: creating them takes no lock on the table, so the
            // transaction that does (DROP/CREATE TRIGGER) holds it for those statements only.
            let statements = try DualWriteSQL.statements(plan, write, backfilling: backfilling.contains(write.table))
            let functions = statements.filter(DualWriteSQL.takesNoTableLock)
            if !functions.isEmpty {
                let began = ContinuousClock.now
                try await s.execAll(functions, atomically: true)
                logger.debug("trigger functions created", metadata: ["phase": "trigger functions", "table": "\(write.table)",
                                                                     "ms": "\(PostgresSession.milliseconds(since: began))"])
            }
            // The DROP/CREATE TRIGGERs go to the server as one statement: the table's lock (which old-shape writers
            // queue behind) is then held for one round trip, not one round trip per statement.
            let triggers = statements.filter { !DualWriteSQL.takesNoTableLock($0) }
            try await s.ddl(on: "\(schema).\(write.table)", options: options, label: "triggers", statements: triggers)
        }
    }

    /// One step: a DDL transaction under the lock timeout, or a concurrent index build outside any transaction
    /// (an invalid index left by a failed build is dropped and built again, once).
    func run(_ s: PostgresSession, _ step: PlanStep) async throws {
        guard step.concurrently else {
            var options = options
            if step.unbounded { options.statementTimeout = 0 }
            if step.raw {
                // A user's SQL, statement by statement as written (a DO block would read a bare SELECT differently).
                try await s.ddl(on: step.table, options: options, label: "step \(step.operation)") { for sql in step.statements { try await s.exec(sql) } }
            } else {
                try await s.ddl(on: step.table, options: options, label: "step \(step.operation)", statements: step.statements)
            }
            return
        }
        try await s.exec("SET lock_timeout = '\(Int(options.lockTimeout * 1000))ms'")
        try await s.exec("SET statement_timeout = 0")
        for attempt in 1...2 {
            if let index = step.index {
                let valid = try await s.value("SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass($1)",
                                              ["\(Identifiers.quote(schema)).\(Identifiers.quote(index))"])
                if valid == "false" {
                    try await s.exec("DROP INDEX CONCURRENTLY IF EXISTS \(Identifiers.quote(schema)).\(Identifiers.quote(index))")
                }
            }
            do {
                for sql in step.statements { try await s.exec(sql) }
            } catch let error as SchemaError where attempt == 1 && error.isTransient {
                continue
            }
            guard let index = step.index else { return try await resetTimeouts(s) }
            let valid = try await s.value("SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass($1)",
                                          ["\(Identifiers.quote(schema)).\(Identifiers.quote(index))"])
            if valid != "false" { return try await resetTimeouts(s) }
        }
        throw SchemaError("the index build on \(step.table ?? "?") left an invalid index twice")
    }

    /// The session's timeouts as `withSession` set them.
    private func resetTimeouts(_ s: PostgresSession) async throws {
        try await s.exec("RESET lock_timeout")
        try await s.exec("SELECT set_config('statement_timeout', $1, false)", ["\(Int(options.statementTimeout * 1000))ms"])
    }

    /// The completed migration before `migration` (whose version schema the old shape's colors use).
    func previousCompleted(_ s: PostgresSession, before migration: Migration) async throws -> String? {
        try await s.value("""
            SELECT name FROM teal.migrations WHERE schema_name = $1 AND state = 'completed' AND (number, name) < ($2::int, $3)
            ORDER BY number DESC, name DESC LIMIT 1
            """, [schema, String(migration.number), migration.name])
    }

    /// Gives `versionSchema`'s views their base tables' privileges and USAGE on it to every role holding any
    /// (see `VersionSchemaGrants`).
    func grant(_ s: PostgresSession, versionSchema: String) async throws {
        let grants = try await VersionSchemaGrants.read(s, schema: schema, versionSchema: versionSchema)
        try await s.execAll(grants.statements(versionSchema: versionSchema))
    }

    /// Brings the version schemas colors use now (the last completed migration's and the in-flight one's) in line
    /// with what the base tables grant today, for privileges granted or revoked after their start or complete.
    /// Only reads when they are in line already; does nothing while another runner holds the migration lock.
    /// Returns how many GRANT and REVOKE statements it ran.
    @discardableResult
    public func refreshGrants() async throws -> Int {
        try await withSession(lock: false) { s in
            func pending() async throws -> [String] {
                let status = try await self.history(s)
                var statements: [String] = []
                for name in [status.lastCompleted, status.inFlight].compactMap({ $0?.name }) {
                    let version = self.versionSchema(for: name)
                    statements += try await VersionSchemaGrants.read(s, schema: self.schema, versionSchema: version).statements(versionSchema: version)
                }
                return statements
            }
            guard try await !pending().isEmpty, try await self.tryRunnerLock(s) else { return 0 }
            return try await s.ddl(on: nil, options: self.options) {
                let statements = try await pending()
                for sql in statements { try await s.exec(sql) }
                return statements.count
            }
        }
    }

    // MARK: backfill

    /// Backfills every table of the plan; the batches on the tables in `recording` record their transaction ids.
    private func backfill(_ s: PostgresSession, _ plan: MigrationPlan, _ migration: Migration, _ catalog: Catalog, recording: Set<String>,
                          progress: (@Sendable (Int, Int) -> Void)?, shouldStop: (@Sendable () -> Bool)?) async throws {
        for table in plan.backfills.keys.sorted() {
            guard let assignments = plan.backfills[table], !assignments.isEmpty, let t = catalog.table(table) else { continue }
            var runner = BackfillRunner(session: s, schema: schema, migration: migration.name, table: t, assignments: assignments,
                                        options: options, logger: logger)
            runner.recordsTransactions = recording.contains(table)
            try await runner.run(progress: progress, shouldStop: shouldStop)
        }
    }

    /// The `teal.backfill` key of the fill that follows a start's backfill (`catchUp`).
    static func catchUpKey(_ name: String) -> String { "\(name) (catch-up)" }

    /// Rows the old shape updated while their table's backfill ran without the UPDATE triggers (see
    /// `DualWriteSQL.statements`) get their new-shape values again. Only tables whose mark was taken are visited,
    /// and there only the rows whose version no batch of the backfill wrote: every row existing at the start was
    /// written by one, so any other version was written after (by the old shape, or in the new shape's values by an
    /// INSERT trigger). The UPDATE triggers are all there by now; a row the old shape writes from here on is
    /// theirs. Resumable like the backfill, under its own key. Then the mark and the batches' ids go.
    private func catchUp(_ s: PostgresSession, _ plan: MigrationPlan, _ migration: Migration, _ catalog: Catalog,
                         shouldStop: (@Sendable () -> Bool)?) async throws {
        for table in plan.backfills.keys.sorted() {
            guard let assignments = plan.backfills[table], !assignments.isEmpty, let t = catalog.table(table) else { continue }
            // A sequence never called has no last_value in pg_sequences.
            let marked = try await s.value("SELECT (last_value IS NOT NULL)::text FROM pg_sequences WHERE schemaname = 'teal' AND sequencename = $1",
                                           [DualWriteSQL.touchedName(plan, table)]) == "true"
            if marked {
                var runner = BackfillRunner(session: s, schema: schema, migration: Self.catchUpKey(migration.name), table: t,
                                            assignments: assignments, options: options, logger: logger)
                runner.kind = "catch-up"
                runner.named = migration.name
                let qt = "\(Identifiers.quote(schema)).\(Identifiers.quote(table))"
                // One probe of teal.backfill_xids' key per row, however many batches there were.
                runner.only = """
                    NOT EXISTS (SELECT 1 FROM teal.backfill_xids b WHERE b.schema_name = \(Identifiers.literal(schema)) \
                    AND b.migration = \(Identifiers.literal(migration.name)) AND b.table_name = \(Identifiers.literal(table)) AND b.xid = \(qt).xmin::text::bigint)
                    """
                logger.info("old-shape updates during the backfill; filling those rows again", metadata: ["migration": "\(migration.name)", "table": "\(table)"])
                try await runner.run(progress: nil, shouldStop: shouldStop)
            }
            try await s.execAll(DualWriteSQL.dropTouched(plan, table) + ["""
                DELETE FROM teal.backfill_xids WHERE schema_name = \(Identifiers.literal(schema)) \
                AND migration = \(Identifiers.literal(migration.name)) AND table_name = \(Identifiers.literal(table))
                """], atomically: true)
        }
    }

    /// Forgets the fills of migration `name`: cursors of the backfill and its catch-up, the batches' ids.
    func forgetFills(_ s: PostgresSession, _ name: String) async throws {
        try await s.exec("DELETE FROM teal.backfill WHERE schema_name = $1 AND migration IN ($2, $3)", [schema, name, Self.catchUpKey(name)])
        try await s.exec("DELETE FROM teal.backfill_xids WHERE schema_name = $1 AND migration = $2", [schema, name])
    }

    // MARK: complete

    /// Contracts the started migration `name`: triggers go, the old shape's columns and tables are put aside,
    /// renames and constraints take their final form, and the previous version schema is dropped.
    public func complete(_ name: String) async throws {
        try await withSession(lock: true) { s in
            try await self.ensureStateTables(s)
            _ = try await self.purgeDue(s, now: nil)
            let (state, migration, catalog) = try await self.load(s, name)
            switch state {
            case .completed: return
            case .rolledBack: throw SchemaError(migration: name, "was rolled back; start it before completing it")
            case .backfilling: throw SchemaError(migration: name, "its start has not finished (the last one was interrupted); run start again to resume it")
            case .reopening:
                try await self.completeAgain(s, try self.plan(migration, catalog), migration)
                self.logger.info("completed again: the reopen cut off earlier is undone", metadata: ["migration": "\(name)"])
                return
            case .started: break
            }
            let plan = try self.plan(migration, catalog)
            // Before the triggers go: every transaction that may write a row without them has an id from here on,
            // which is how a reopen tells the rows written since complete (kept from the first attempt on).
            try await s.exec("""
                UPDATE teal.migrations SET complete_xmin = coalesce(complete_xmin, txid_snapshot_xmin(txid_current_snapshot()))
                WHERE schema_name = $1 AND name = $2
                """, [self.schema, name])
            try await self.contract(s, plan, migration)
            // What was put aside is recorded with the state change, so the retention window starts from complete.
            try await s.transaction {
                try await self.recordAside(s, plan)
                try await self.forgetFills(s, name)
                try await s.exec("UPDATE teal.migrations SET state = 'completed', completed_at = now() WHERE schema_name = $1 AND name = $2",
                                 [self.schema, name])
            }
            self.logger.info("completed", metadata: ["migration": "\(name)"])
        }
    }

    /// Complete's changes to the app: triggers go, the old shape's columns and tables are put aside, renames and
    /// constraints take their final form, the previous version schema is dropped, the new one's grants brought in
    /// line with the base tables'. Every step is idempotent.
    func contract(_ s: PostgresSession, _ plan: MigrationPlan, _ migration: Migration) async throws {
        for write in plan.dualWriteTables {
            try await s.ddl(on: "\(schema).\(write.table)", options: options) {
                for sql in DualWriteSQL.dropStatements(plan, table: write.table) { try await s.exec(sql) }
            }
        }
        for step in plan.contractInOrder { try await runLocated(s, step, migration) }
        if let previous = try await previousCompleted(s, before: migration) {
            try await s.ddl(on: nil, options: options) {
                try await s.exec("DROP SCHEMA IF EXISTS \(Identifiers.quote(self.versionSchema(for: previous))) CASCADE")
            }
        }
        // Privileges granted or revoked on the base tables since start (or since a reopen) reach the views that stay.
        try await s.ddl(on: nil, options: options) { try await self.grant(s, versionSchema: plan.versionSchema) }
    }

    /// `run`, with a failure naming the operation the step comes from.
    func runLocated(_ s: PostgresSession, _ step: PlanStep, _ migration: Migration) async throws {
        do {
            try await run(s, step)
        } catch var error as SchemaError {
            if error.operationIndex == nil, migration.operations.indices.contains(step.operation) {
                error.operationIndex = step.operation
                error.operationKind = migration.operations[step.operation].kind
            }
            throw error.locatedIn(migration)
        }
    }

    // MARK: rollback

    /// Undoes the in-flight migration `name` from the definition stored in the database, keeping aside what only
    /// the new shape holds.
    public func rollback(_ name: String) async throws {
        try await withSession(lock: true) { s in
            try await self.ensureStateTables(s)
            let (state, migration, catalog) = try await self.load(s, name)
            switch state {
            case .rolledBack: return
            case .completed: throw SchemaError(migration: name, "is completed; a completed migration cannot be rolled back")
            case .reopening: throw SchemaError(migration: name, "its reopen was cut off; reopen it again before rolling it back, or complete it")
            case .backfilling, .started: break
            }
            try await self.undo(s, try self.plan(migration, catalog))
            self.logger.info("rolled back", metadata: ["migration": "\(name)"])
        }
    }

    private func undo(_ s: PostgresSession, _ plan: MigrationPlan) async throws {
        for write in plan.dualWrites.keys.sorted() {
            try await s.ddl(on: "\(schema).\(write)", options: options) {
                if try await s.value("SELECT to_regclass($1)::text", ["\(Identifiers.quote(self.schema)).\(Identifiers.quote(write))"]) != nil {
                    for sql in DualWriteSQL.dropStatements(plan, table: write) { try await s.exec(sql) }
                }
            }
        }
        try await s.ddl(on: nil, options: options) { try await s.exec("DROP SCHEMA IF EXISTS \(Identifiers.quote(plan.versionSchema)) CASCADE") }
        for step in plan.undo { try await run(s, step) }
        try await forgetFills(s, plan.migration)
        try await s.exec("UPDATE teal.migrations SET state = 'rolled_back', rolled_back_at = now() WHERE schema_name = $1 AND name = $2",
                         [schema, plan.migration])
    }

    func load(_ s: PostgresSession, _ name: String) async throws -> (MigrationState, Migration, Catalog) {
        guard let row = try await s.rows("SELECT state, definition, catalog FROM teal.migrations WHERE schema_name = $1 AND name = $2",
                                         [schema, name]).first else {
            throw SchemaError(migration: name, "was never started")
        }
        guard let state = MigrationState(rawValue: row[0] ?? "") else { throw SchemaError(migration: name, "has an unknown state \(row[0] ?? "")") }
        let migration = try JSONDecoder().decode(Migration.self, from: Data((row[1] ?? "").utf8))
        let catalog = try JSONDecoder().decode(Catalog.self, from: Data((row[2] ?? "").utf8))
        return (state, migration, catalog)
    }

    // MARK: sessions, the runner lock and teal's tables

    func withSession<T>(lock: Bool, _ body: (PostgresSession) async throws -> T) async throws -> T {
        let s = try await PostgresSession.open(settings, logger: logger, applicationName: "teal schema")
        do {
            // teal's statements are bounded by `statementTimeout` (index builds and lone VALIDATEs lift it).
            try await s.configure(searchPath: "\(Identifiers.quote(schema)), public", statementTimeout: options.statementTimeout)
            if lock { try await acquireRunnerLock(s) }
            let value = try await body(s)
            await s.close()
            return value
        } catch {
            await s.close() // closing the session also releases the advisory lock
            throw error
        }
    }

    /// A session advisory lock keyed by the app schema: the second runner waits `runnerWait`, then is told who
    /// holds it.
    private func acquireRunnerLock(_ s: PostgresSession) async throws {
        let key = Self.runnerLockKey
        let deadline = Date().addingTimeInterval(options.runnerWait)
        while true {
            if try await s.value("SELECT pg_try_advisory_lock(\(key))::text", [schema]) == "true" { return }
            if Date() >= deadline { break }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        let holder = try await s.rows("""
            SELECT a.pid::text, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local'), coalesce(extract(epoch FROM now() - a.backend_start)::int::text, '?')
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objid = (\(key) & 4294967295)::bigint::oid
            """, [schema]).first
        var e = SchemaError("another runner holds teal's migration lock on \(settings)" +
                            (holder.map { " (pid \($0[0] ?? "?"), \($0[1] ?? ""), from \($0[2] ?? "?"), connected \($0[3] ?? "?") s)" } ?? "") +
                            "; waited \(Int(options.runnerWait)) s")
        e.isTransient = true
        throw e
    }

    static let runnerLockKey = "hashtext('teal:' || current_database() || ':' || $1)"

    /// True when the runner lock was free and is now held by `s`; never waits.
    func tryRunnerLock(_ s: PostgresSession) async throws -> Bool {
        try await s.value("SELECT pg_try_advisory_lock(\(Self.runnerLockKey))::text", [schema]) == "true"
    }

    /// The state a migration may be in (`teal.migrations.state`).
    static let stateCheck = "CHECK (state IN ('backfilling', 'started', 'completed', 'rolled_back', 'reopening'))"

    func ensureStateTables(_ s: PostgresSession) async throws {
        if try await s.value("""
            SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('teal.migrations') AND attname = 'complete_xmin' AND NOT attisdropped
            AND to_regclass('teal.aside') IS NOT NULL AND to_regclass('teal.backfill_xids') IS NOT NULL
            AND EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass('teal.migrations') AND conname = 'migrations_state_check'
                        AND pg_get_constraintdef(oid) LIKE '%reopening%')
            """) != nil { return }
        let hadMigrations = try await s.value("SELECT to_regclass('teal.migrations')::text") != nil
        let hadAside = try await s.value("SELECT to_regclass('teal.aside')::text") != nil
        let upgrading = hadMigrations && !hadAside
        // Under the lock timeout: upgrading an older state table locks it, and a session idle in a transaction that
        // read it must not hold every pass (and the runner lock) behind it.
        try await s.ddl(on: "teal.migrations", options: options, label: "state tables") {
            for sql in [
                "CREATE SCHEMA IF NOT EXISTS teal",
                """
                CREATE TABLE IF NOT EXISTS teal.migrations (
                    schema_name text NOT NULL,
                    name text NOT NULL,
                    number integer NOT NULL,
                    checksum text NOT NULL,
                    definition text NOT NULL,
                    catalog text NOT NULL,
                    state text NOT NULL CONSTRAINT migrations_state_check \(Self.stateCheck),
                    started_at timestamptz NOT NULL,
                    completed_at timestamptz,
                    rolled_back_at timestamptz,
                    complete_xmin bigint,
                    PRIMARY KEY (schema_name, name))
                """,
                // The oldest transaction id that could write without the triggers, taken when complete began (Reopen).
                "ALTER TABLE teal.migrations ADD COLUMN IF NOT EXISTS complete_xmin bigint",
                // `reopening` (Reopen), in state tables made before it.
                "ALTER TABLE teal.migrations DROP CONSTRAINT IF EXISTS migrations_state_check, ADD CONSTRAINT migrations_state_check \(Self.stateCheck)",
                """
                CREATE TABLE IF NOT EXISTS teal.backfill (
                    schema_name text NOT NULL,
                    migration text NOT NULL,
                    table_name text NOT NULL,
                    cursor text[],
                    bound text[],
                    done bigint NOT NULL DEFAULT 0,
                    total bigint NOT NULL DEFAULT 0,
                    finished boolean NOT NULL DEFAULT false,
                    PRIMARY KEY (schema_name, migration, table_name))
                """,
                // The transaction of each backfill batch (as 32-bit ids, those row versions carry), for the catch-up.
                """
                CREATE TABLE IF NOT EXISTS teal.backfill_xids (
                    schema_name text NOT NULL,
                    migration text NOT NULL,
                    table_name text NOT NULL,
                    xid bigint NOT NULL,
                    PRIMARY KEY (schema_name, migration, table_name, xid))
                """,
                // What complete put aside, kept until the retention window passes (see Retention.swift).
                """
                CREATE TABLE IF NOT EXISTS teal.aside (
                    schema_name text NOT NULL,
                    migration text NOT NULL,
                    kind text NOT NULL CHECK (kind IN ('column', 'table')),
                    holder text NOT NULL,
                    name text NOT NULL,
                    put_aside_at timestamptz NOT NULL,
                    PRIMARY KEY (schema_name, kind, holder, name))
                """,
            ] { try await s.exec(sql) }
            if upgrading { try await self.recordEarlierCompletes(s) }
        }
    }
}

extension SchemaError {
    func locatedIn(_ migration: Migration) -> SchemaError {
        var copy = self
        if copy.migration == nil { copy.migration = migration.name }
        return copy
    }
}

