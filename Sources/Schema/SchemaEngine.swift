// Two shapes of one SQLite database at once
// ==========================================
// pgroll serves each schema version from its own PostgreSQL schema, picked by search_path. A SQLite file has a
// single namespace and an unmodified app cannot be made to pick one, so the engine arranges for the old and new
// shapes to coexist under the same names:
//
// * The real table keeps the old shape. A column the new shape adds (add_column, or the new name of a
//   rename_column / alter_column) is an extra physical column; a column the new shape drops stays physically.
//   Each release simply ignores the columns it does not know.
// * Values cross between shapes through triggers built from all operations of the migration, per table: one
//   AFTER INSERT trigger fills whatever the insert left NULL (new columns with `up`, old ones with `down`), and
//   one AFTER UPDATE trigger per direction recomputes the other shape's columns when a write changed their
//   sources but not them. No flag guards against ping-pong: an update trigger's write is skipped when the
//   row already is in step, i.e. the columns it would recompute from equal what the other direction computes
//   from the row — true of a row that another trigger or the backfill has just filled, false of an
//   application's write that changed something. So an old-shape insert costs one extra write of the same
//   row, and it holds whatever the connection's `recursive_triggers` setting.
// * The update trigger for writes in the new shape is created when the backfill ends, in the transaction
//   that marks the migration `started` (its SQL waits in `_teal_migration_state`): the backfill writes
//   exactly the columns it watches, and would otherwise run it once per row. Until then the new shape's
//   inserts are served but its updates are not carried back — no release of the new shape runs before
//   `start` returns.
// * Columns only the old shape has lose NOT NULL and DEFAULT during the migration (rewritten in place with
//   SQLite's documented writable_schema procedure, no row rewrite), so new-shape inserts never fail on them;
//   the triggers fill them right away. Constraints of new columns are declared at complete, after the rows
//   are checked, so old-shape inserts never fail on them.
// * A column that keeps its name but changes (pgroll's alter_column, create_constraint with a computing `up`) gets
//   a hidden twin, `_teal_new_<column>`, holding the new definition; both releases read the old column while both
//   run, and complete puts the twin in its place. Constraints the new shape adds wait for complete; those it
//   drops are lifted at start and re-declared by rollback after `down` has conformed the rows.
// * SQLite can show a table under a second name only as a view, whose writes report wrong ids, so rename_table is
//   refused on SQLite (the dialect's `unsupported`), as is everything else only PostgreSQL expresses.
// * Rollback leaves sqlite_schema byte for byte as before start (`OriginalSchema`); kept-aside values are keyed by
//   the row's primary key and forget rows deleted meanwhile.
//
// Phases: start = validate + expand in one transaction (history row `backfilling`), then backfill in rowid
// batches, each its own transaction recording progress in `_teal_backfill` (a crash resumes from there), paced
// by `BackfillPacer` so that other connections' writers wait about one batch, while `DownCheck` checks, on a
// connection of its own, each batch's rows once committed: no `down` may give NULL to a column the old shape
// requires. Then `started`. complete and
// rollback are one transaction each. Rollback keeps aside, in `_teal_kept_*` tables,
// what only the new shape could hold, and the next start of the same migration brings it back.

import Foundation
import GRDB
import Logging
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// Runs expand/contract migrations on one SQLite database file.
public final class SchemaEngine: @unchecked Sendable {
    /// The database file.
    public let path: String
    /// Batch size, busy timeout, pacing.
    public let options: SchemaEngineOptions
    /// The database family: what it refuses and how operations reach it.
    public let dialect: any SchemaDialect
    let logger: Logger
    let queue: DatabaseQueue
    /// The connections' configuration (a `DownCheck` opens one more).
    let configuration: Configuration

    /// Opens (creating if needed) the database at `path` in WAL mode.
    public init(path: String, options: SchemaEngineOptions = SchemaEngineOptions(), logger: Logger = Logger(label: "teal.schema"),
                dialect: any SchemaDialect = SQLiteDialect()) throws {
        self.path = path
        self.options = options
        self.dialect = dialect
        self.logger = logger
        var config = Configuration()
        config.busyMode = .timeout(options.busyTimeout)
        config.foreignKeysEnabled = false
        config.prepareDatabase { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        configuration = config
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
        } catch {
            throw SchemaError.wrap(error, migration: nil, doing: "cannot open \(path)")
        }
    }

    /// The migration history stored in the database.
    public func status() throws -> SchemaStatus {
        do {
            return SchemaStatus(migrations: try queue.read { try History.all($0) })
        } catch {
            throw SchemaError.wrap(error, migration: nil, doing: "cannot read the migration history")
        }
    }

    /// Fails when a migration already started, completed or in flight was started from a file with different bytes.
    public func verifyChecksums(_ migrations: [Migration]) throws {
        let applied = Dictionary(try status().migrations.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for m in migrations {
            if let a = applied[m.name], a.state != .rolledBack, a.checksum != m.checksum {
                throw SchemaError(migration: m.name, "the file changed after it was applied (stored checksum \(a.checksum), file \(m.checksum)); write a new migration instead")
            }
        }
    }

    /// Checks a migration against the database without changing it: every operation is validated, then
    /// expanded in a transaction that is rolled back (so bad SQL in `up`/`down` is caught with SQLite's message).
    public func validate(_ migration: Migration) throws {
        try write { db in
            try db.inTransaction(.immediate) {
                try History.create(db)
                try self.admit(db, migration)
                _ = try self.expand(db, migration, restoreKept: false)
                return .rollback
            }
        }
    }

    /// Starts (expands) a migration and backfills existing rows; both shapes are usable when it returns.
    /// Starting a migration left half-way by a crash resumes it; starting one already started or completed does nothing.
    /// On failure the database is left as it was before the call.
    ///
    /// `shouldStop` is asked before every backfill batch; when it answers true (a newer commit arrived) the start
    /// stops within one batch and throws an error whose `isInterruption` is true, leaving the migration
    /// `backfilling`: `start` again resumes it, `rollback` undoes it.
    public func start(_ migration: Migration, progress: (@Sendable (_ done: Int, _ total: Int) -> Void)? = nil,
                      shouldStop: (@Sendable () -> Bool)? = nil) throws {
        var previous: AppliedMigration?
        var resuming = false
        var alreadyDone = false
        // Values an earlier rollback left undeclared would show through a column this start adds; a NOT NULL it
        // could not re-declare yet would be taken for the column's real declaration.
        let notNullLeft = try restoreNotNull()
        if let first = notNullLeft.first {
            throw SchemaError(migration: migration.name, "cannot start while an earlier rollback waits to re-declare NOT NULL: \(first); give those rows a value")
        }
        try trimRows()
        try write { db in
            try db.inTransaction(.immediate) {
                try History.create(db)
                // Another process may have rolled back meanwhile: its clean-up must run before any column is added.
                if try !RowTrim.pending(db).isEmpty || !NotNullRestore.pending(db).isEmpty {
                    var busy = SchemaError(migration: migration.name, "another process's rollback has clean-up to finish first; trying again")
                    busy.isTransient = true
                    throw busy
                }
                let existing = try History.find(db, migration.name)
                if let existing, existing.state != .rolledBack {
                    if existing.checksum != migration.checksum {
                        throw SchemaError(migration: migration.name, "the file changed after it was applied (stored checksum \(existing.checksum), file \(migration.checksum)); write a new migration instead")
                    }
                    if existing.state == .backfilling { resuming = true } else { alreadyDone = true }
                    return .commit
                }
                previous = existing
                try self.admit(db, migration)
                let restore = existing.map { $0.checksum == migration.checksum } ?? false
                try self.expand(db, migration, restoreKept: restore)
                try db.execute(sql: """
                    INSERT OR REPLACE INTO "\(History.migrations)" (name, number, checksum, definition, state, started_at)
                    VALUES (?, ?, ?, ?, ?, \(History.now))
                    """, arguments: [migration.name, migration.number, migration.checksum, try History.encode(migration), MigrationState.backfilling.rawValue])
                return .commit
            }
        }
        if alreadyDone {
            logger.info("migration already started", metadata: ["migration": "\(migration.name)"])
            return
        }
        logger.info(resuming ? "resuming backfill" : "expanded", metadata: ["migration": "\(migration.name)"])
        do {
            let downs = try queue.read { try DownCheck(path: path, configuration: configuration, migration: migration, in: $0) }
            try backfill(migration.name, downs: downs, progress: progress, shouldStop: shouldStop)
            try downs.finish(on: queue)
        } catch let error as SchemaError where error.isInterruption {
            logger.info("backfill interrupted", metadata: ["migration": "\(migration.name)"])
            throw error
        } catch {
            let cause = SchemaError.wrap(error, migration: migration.name, doing: "backfill failed")
            do {
                try undoStart(migration.name, previous: resuming ? nil : .some(previous))
                // Undoing a resumed start defers NOT NULL as a rollback does; like a rollback, it re-declares it now.
                _ = try restoreNotNull()
                try trimRows()
            } catch let undoError {
                throw SchemaError(migration: migration.name, "\(cause.message); undoing the start failed too: \(SchemaError.wrap(undoError, migration: nil).message)")
            }
            logger.error("start undone", metadata: ["migration": "\(migration.name)", "error": "\(cause)"])
            throw cause
        }
        do {
            try write { db in try db.inTransaction(.immediate) {
                try self.installDeferredTriggers(db, migration.name)
                try History.setState(db, migration.name, .started)
                return .commit
            } }
        } catch {
            throw SchemaError.wrap(error, migration: migration.name, doing: "cannot finish the start")
        }
        logger.info("started", metadata: ["migration": "\(migration.name)"])
    }

    /// Completes (contracts) a started migration: the old shape, triggers, views and helper columns go.
    public func complete(_ name: String) throws {
        try write { db in
            try db.inTransaction(.immediate) {
                try History.create(db)
                guard let applied = try History.find(db, name) else { throw SchemaError(migration: name, "was never started") }
                switch applied.state {
                case .completed: return .commit
                case .rolledBack: throw SchemaError(migration: name, "was rolled back; start it before completing it")
                case .reopening: throw SchemaError(migration: name, "is being reopened, which SQLite cannot do")
                case .backfilling: throw SchemaError(migration: name, "its backfill has not finished (the last start was interrupted); run start again to resume it")
                case .started: break
                }
                let ops = applied.definition.operations
                let impls = Implementations.of(ops)
                let dialect = try self.dialect.session(db)
                try dialect.dropMachinery(triggerPrefix: Self.triggerPrefix(name), views: Self.aliasViews(ops))
                let renames = ops.indices.filter { if case .renameTable = ops[$0] { true } else { false } }
                let order = ops.indices.reversed().filter { !renames.contains($0) } + renames
                for i in order {
                    try self.run(impls[i], index: i, of: applied.definition, db: db, dialect: dialect) { try $0.complete($1) }
                }
                try History.setState(db, name, .completed)
                try History.clearWorkingState(db, name)
                try db.execute(sql: "DROP TABLE IF EXISTS \(Identifiers.quote(SQLiteSession.guardTable))")
                return .commit
            }
        }
        logger.info("completed", metadata: ["migration": "\(name)"])
    }

    /// Rolls back a started migration from its stored definition (the file may be gone): the new shape goes,
    /// rows written in it keep their old-shape values, values only it could hold are kept aside.
    ///
    /// The rollback itself is one short transaction: added columns leave the declaration without a table rewrite
    /// where SQLite allows (`RowTrim`). The rows' leftover values are then cleared in paced batches before this
    /// returns; an error there leaves the migration rolled back and the clearing to the next start or rollback.
    /// `rolledBack` hears the moment the rollback has committed (the old shape alone is then declared), before
    /// the clearing.
    public func rollback(_ name: String, rolledBack: (() -> Void)? = nil) throws {
        try keepAsideInBatches(name)
        try rollbackLeavingRows(name)
        rolledBack?()
        do {
            try restoreNotNull()
            try trimRows()
        } catch {
            throw SchemaError.wrap(error, migration: name, doing: "rolled back, but clearing the dropped columns' values failed (the next start or rollback retries)")
        }
    }

    /// The rollback's one transaction, without the work it leaves for after (NOT NULL, clearing the rows).
    func rollbackLeavingRows(_ name: String) throws {
        try undoStart(name, previous: nil)
        logger.info("rolled back", metadata: ["migration": "\(name)"])
    }

    // MARK: - Phases

    func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.writeWithoutTransaction { db in
                do {
                    return try body(db)
                } catch {
                    // A rolled-back transaction may have created or dropped tables GRDB remembers.
                    db.clearSchemaCache()
                    throw error
                }
            }
        } catch {
            throw SchemaError.wrap(error, migration: nil)
        }
    }

    static func triggerPrefix(_ migration: String) -> String { "_teal_\(migration)_" }

    /// Key prefix, in `_teal_migration_state`, of trigger SQL waiting for the end of the backfill.
    static let deferredKey = "deferred_trigger."
    /// Key prefix of `down` values that must not be NULL (`table.n` → "operation\ncolumn\nexpression").
    static let downCheckKey = "down_check."

    /// Creates the triggers for updates the new shape makes, now that every existing row has its values.
    private func installDeferredTriggers(_ db: Database, _ name: String) throws {
        let pattern = Self.deferredKey.replacingOccurrences(of: "_", with: "\\_") + "%"
        let statements = try String.fetchAll(db, sql: """
            SELECT value FROM "\(History.state)" WHERE migration = ? AND key LIKE ? ESCAPE '\\' ORDER BY key
            """, arguments: [name, pattern])
        for sql in statements { try db.execute(sql: sql) }
        try db.execute(sql: "DELETE FROM \"\(History.state)\" WHERE migration = ? AND key LIKE ? ESCAPE '\\'", arguments: [name, pattern])
    }

    static func aliasViews(_ ops: [Manifest.Operation]) -> [String] {
        ops.compactMap { if case .renameTable(let r) = $0 { r.to } else { nil } }
    }

    /// Table names as operation `index` sees them (new-shape name → physical table).
    static func tableNames(_ ops: [Manifest.Operation], before index: Int) -> [String: String] {
        var names: [String: String] = [:]
        for op in ops[..<index] {
            if case .renameTable(let r) = op { names[r.to.lowercased()] = names[r.from.lowercased()] ?? r.from }
        }
        return names
    }

    private func run(_ op: any SchemaOperation, index: Int, of migration: Migration, db: Database, dialect: any DialectSession, plan: ExpandPlan = ExpandPlan(),
                     restoreKept: Bool = false, notNullLater: NotNullDeferral? = nil,
                     _ body: (any SchemaOperation, OperationContext) throws -> Void) throws {
        let ctx = OperationContext(dialect: dialect, migration: migration.name, index: index,
                                   tableNames: Self.tableNames(migration.operations, before: index), plan: plan,
                                   restoreKept: restoreKept, store: StoredOperationState(db, migration: migration.name), notNullLater: notNullLater)
        do {
            try body(op, ctx)
        } catch {
            throw SchemaError.wrap(error, migration: migration.name, index: index, kind: op.kind)
        }
    }

    /// Whether this migration may start now: nothing else in flight, nothing newer completed.
    private func admit(_ db: Database, _ migration: Migration) throws {
        let all = try History.all(db)
        if let other = all.first(where: { $0.state.isInFlight && $0.name != migration.name }) {
            throw SchemaError(migration: migration.name, "cannot start while \(other.name) is in flight; complete or roll it back first")
        }
        let newer = all.last { applied in
            applied.state == .completed && applied.definition.number >= migration.number && applied.name != migration.name
        }
        if let newer {
            throw SchemaError(migration: migration.name, "comes before \(newer.name), which is already completed")
        }
    }

    /// Validates and expands in the caller's transaction; records the backfill work.
    @discardableResult
    private func expand(_ db: Database, _ migration: Migration, restoreKept: Bool) throws -> ExpandPlan {
        if let refused = dialect.unsupported(in: migration).first {
            throw SchemaError(migration: migration.name, operationIndex: refused.operationIndex,
                              operationKind: migration.operations[refused.operationIndex].kind, refused.message)
        }
        let session = try self.dialect.session(db)
        let impls = Implementations.of(migration.operations)
        let model = ShapeModel(dialect: session)
        for (i, op) in impls.enumerated() {
            do { try op.validate(model) } catch { throw SchemaError.wrap(error, migration: migration.name, index: i, kind: op.kind) }
        }
        try History.clearWorkingState(db, migration.name)
        try OriginalSchema.record(db, migration: migration.name)
        let plan = ExpandPlan()
        for (i, op) in impls.enumerated() {
            plan.currentOperation = i
            try run(op, index: i, of: migration, db: db, dialect: session, plan: plan, restoreKept: restoreKept) { try $0.start($1) }
        }
        let dialect = session
        let prefix = Self.triggerPrefix(migration.name)
        for table in plan.tables {
            let assignments = plan.assignments[table] ?? []
            for a in assignments {
                let op = migration.operations[a.origin]
                do {
                    try dialect.checkExpression(a.expression, on: table)
                    if let fallback = a.fallback { try dialect.checkExpression(fallback, on: table) }
                } catch {
                    throw SchemaError.wrap(error, migration: migration.name, index: a.origin, kind: op.kind, doing: "bad expression '\(a.expression)'")
                }
            }
            for (n, a) in assignments.enumerated() where !a.backfill && a.requiredInOldShape {
                let value = a.fallback.map { "COALESCE((\(a.expression)), (\($0)))" } ?? "(\(a.expression))"
                try db.execute(sql: "INSERT INTO \"\(History.state)\" (migration, key, value) VALUES (?, ?, ?)",
                               arguments: [migration.name, "\(Self.downCheckKey)\(table).\(n)", "\(a.origin)\n\(a.target)\n\(value)"])
            }
            do {
                let deferred = try dialect.installDualShape(table: table, triggerPrefix: prefix, assignments: assignments)
                for (i, sql) in deferred.enumerated() {
                    try db.execute(sql: "INSERT INTO \"\(History.state)\" (migration, key, value) VALUES (?, ?, ?)",
                                   arguments: [migration.name, "\(Self.deferredKey)\(table).\(i)", sql])
                }
            } catch {
                throw SchemaError.wrap(error, migration: migration.name, doing: "cannot install the triggers on \(table)")
            }
            let fill = assignments.filter(\.backfill)
            guard !fill.isEmpty else { continue }
            let q = Identifiers.quote(table)
            let maxRowid = try Int64.fetchOne(db, sql: "SELECT max(rowid) FROM \(q)") ?? 0
            let set: String = fill.map { "\(Identifiers.quote($0.target)) = \($0.valueSQL)" }.joined(separator: ", ")
            // The row count (progress only) is taken by the backfill outside this transaction: counting a large
            // table here would hold the write lock for as long.
            try db.execute(sql: """
                INSERT INTO "\(History.backfill)" (migration, table_name, assignments, last_rowid, max_rowid, done, total)
                VALUES (?, ?, ?, ?, ?, 0, -1)
                """, arguments: [migration.name, table, set, Int64.min, maxRowid])
        }
        for alias in plan.aliasViews {
            do {
                try dialect.createAliasView(alias.view, of: alias.table, triggerPrefix: prefix)
            } catch {
                throw SchemaError.wrap(error, migration: migration.name, doing: "cannot create the view \(alias.view)")
            }
        }
        return plan
    }

    private struct BackfillTask {
        var table: String
        var assignments: String
        var lastRowid: Int64
        var maxRowid: Int64
        var total: Int
    }

    /// Fills the new columns of existing rows, one rowid range per transaction, resuming where a crash stopped.
    /// `BackfillPacer` sizes the batches and the gaps between them. No trigger fires on these updates: the
    /// only update triggers installed yet watch old-shape columns.
    /// `downs` checks the rows of each batch once it has committed, and stops the backfill at its first failure.
    private func backfill(_ name: String, downs: DownCheck, progress: (@Sendable (Int, Int) -> Void)?, shouldStop: (@Sendable () -> Bool)?) throws {
        let (tasks, doneSoFar) = try queue.read { db -> ([BackfillTask], Int) in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM \"\(History.backfill)\" WHERE migration = ? ORDER BY table_name", arguments: [name])
            let tasks = try rows.map { row -> BackfillTask in
                let table: String = row["table_name"]
                let maxRowid: Int64 = row["max_rowid"]
                var total: Int = row["total"]
                if total < 0 {
                    total = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(Identifiers.quote(table)) WHERE rowid <= ?", arguments: [maxRowid]) ?? 0
                }
                return BackfillTask(table: table, assignments: row["assignments"], lastRowid: row["last_rowid"], maxRowid: maxRowid, total: total)
            }
            return (tasks, rows.reduce(0) { $0 + ($1["done"] as Int) })
        }
        var done = doneSoFar
        let total = tasks.reduce(0) { $0 + $1.total }
        progress?(done, total)
        guard tasks.contains(where: { $0.lastRowid < $0.maxRowid }) else { return }
        let crashAfter = ProcessInfo.processInfo.environment["TEAL_SCHEMA_CRASH_AFTER_BATCH"].flatMap(Int.init)
        var batches = 0
        var foreignBatches = 0
        var paused: TimeInterval = 0
        var lastLog = Date()
        var pacer = BackfillPacer(options: options)
        var dataVersion = try queue.read { try Int.fetchOne($0, sql: "PRAGMA data_version") ?? 0 }
        // The backfill checkpoints the WAL itself, between batches: SQLite's automatic checkpoint would run
        // inside whichever commit crosses 1000 frames, often another connection's, which would then wait for it.
        let autocheckpoint = try write { try Int.fetchOne($0, sql: "PRAGMA wal_autocheckpoint") ?? 1000 }
        try write { try $0.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
        defer { _ = try? write { try $0.execute(sql: "PRAGMA wal_autocheckpoint = \(autocheckpoint)") } }
        var batchesSinceCheckpoint = 0
        var checkpointEvery = 8
        if options.yieldsToWriters {
            Thread.sleep(forTimeInterval: BackfillPacer.probe)
        }
        // The look before the first batch: a commit by another connection meanwhile shows in that batch.
        for task in tasks {
            let q = Identifiers.quote(task.table)
            var last = task.lastRowid
            downs.advance(task.table, to: last) // rows an earlier, interrupted backfill filled
            let totalToStore = task.total
            while last < task.maxRowid {
                if let shouldStop, shouldStop() {
                    throw SchemaError(migration: name, interruption: "the backfill was interrupted (\(done) of \(total) rows done); start resumes it, rollback undoes it")
                }
                var began: TimeInterval = 0
                var work: TimeInterval = 0
                var foreign = false
                let rows = pacer.rows
                let (upper, changed) = try write { db in
                    var result: (Int64, Int) = (task.maxRowid, 0)
                    try db.inTransaction(.immediate) {
                        began = BackfillPacer.now()
                        // Statements are cached: compiling them for every batch would cost more than some batches.
                        let version = try Int.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) ?? 0
                        foreign = version != dataVersion
                        dataVersion = version
                        let hi = try Int64.fetchOne(db.cachedStatement(sql: "SELECT rowid FROM \(q) WHERE rowid > ? ORDER BY rowid LIMIT 1 OFFSET ?"),
                                                    arguments: [last, rows - 1]) ?? task.maxRowid
                        let upper = min(hi, task.maxRowid)
                        try db.cachedStatement(sql: "UPDATE \(q) SET \(task.assignments) WHERE rowid > ? AND rowid <= ?").execute(arguments: [last, upper])
                        let changed = db.changesCount
                        try db.cachedStatement(sql: """
                            UPDATE "\(History.backfill)" SET last_rowid = ?, done = done + ?, total = ? WHERE migration = ? AND table_name = ?
                            """).execute(arguments: [upper, changed, totalToStore, name, task.table])
                        result = (upper, changed)
                        work = BackfillPacer.now() - began
                        return .commit
                    }
                    return result
                }
                let now = BackfillPacer.now()
                if foreign {
                    pacer.sawForeignWrite(at: now)
                    foreignBatches += 1
                }
                last = upper
                done += changed
                batches += 1
                downs.advance(task.table, to: upper)
                if let failure = downs.failure { throw failure }
                progress?(done, total)
                if Date().timeIntervalSince(lastLog) >= 2 {
                    lastLog = Date()
                    logger.info("backfill", metadata: ["migration": "\(name)", "table": "\(task.table)", "done": "\(done)", "total": "\(total)"])
                }
                if let crashAfter, batches >= crashAfter { _exit(86) }
                let pause = pacer.finished(work: work, held: now - began, at: now)
                var idle: TimeInterval = 0
                batchesSinceCheckpoint += 1
                if batchesSinceCheckpoint >= checkpointEvery {
                    // Busy when another connection is checkpointing: nothing to do then.
                    let frames = try queue.writeWithoutTransaction { db -> Int in
                        do {
                            return try db.checkpoint(.passive).walFrameCount
                        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
                            return 0
                        }
                    }
                    idle = BackfillPacer.now() - now
                    pacer.idled(idle)
                    // While other connections write, about 800 frames a checkpoint (each costs two fsyncs): below
                    // the 1000 at which their commits would checkpoint themselves. A quiet backfill lets more build
                    // up (`BackfillPacer.quietFrames`), for fewer fsyncs; a writer arriving then may run one
                    // checkpoint of those in its first commit, once.
                    let aim = pacer.isActive(at: now) ? 800 : BackfillPacer.quietFrames
                    if frames > 0 { checkpointEvery = max(1, min(256, batchesSinceCheckpoint * aim / frames)) }
                    batchesSinceCheckpoint = 0
                }
                if pause > idle {
                    Thread.sleep(forTimeInterval: pause - idle)
                    paused += pause - idle
                }
            }
        }
        logger.info("backfill finished", metadata: ["migration": "\(name)", "rows": "\(done)", "batches": "\(batches)",
                                                    "batches after another connection's commit": "\(foreignBatches)",
                                                    "paused": "\(String(format: "%.3f", paused)) s"])
    }

    /// Rolls a migration back. `previous` is set when undoing a failed start: `.some(nil)` means the migration
    /// had no history row before, `.some(row)` that it had that (rolled-back) row, which is put back.
    private func undoStart(_ name: String, previous: AppliedMigration??) throws {
        try write { db in
            try db.inTransaction(.immediate) {
                try History.create(db)
                guard let applied = try History.find(db, name) else { throw SchemaError(migration: name, "was never started") }
                switch applied.state {
                case .rolledBack: return .commit
                case .completed, .reopening: throw SchemaError(migration: name, "is completed and cannot be rolled back; write a new migration that reverses it")
                case .started, .backfilling: break
                }
                let ops = applied.definition.operations
                let impls = Implementations.of(ops)
                let dialect = try self.dialect.session(db)
                try dialect.dropMachinery(triggerPrefix: Self.triggerPrefix(name), views: Self.aliasViews(ops))
                // A rollback's own check that old-shape columns hold no NULL would scan whole tables under the write lock.
                let notNullLater = previous == nil ? NotNullDeferral() : nil
                for i in ops.indices.reversed() {
                    try self.run(impls[i], index: i, of: applied.definition, db: db, dialect: dialect, notNullLater: notNullLater) { try $0.rollback($1) }
                }
                try OriginalSchema.restore(db, migration: name, dialect: dialect, relaxing: notNullLater?.columns ?? [])
                try History.clearWorkingState(db, name)
                try db.execute(sql: "DROP TABLE IF EXISTS \(Identifiers.quote(SQLiteSession.guardTable))")
                switch previous {
                case .none:
                    try History.setState(db, name, .rolledBack)
                case .some(.none):
                    try db.execute(sql: "DELETE FROM \"\(History.migrations)\" WHERE name = ?", arguments: [name])
                case .some(.some(let row)):
                    try db.execute(sql: """
                        UPDATE "\(History.migrations)" SET checksum = ?, definition = ?, state = ?, started_at = ?, completed_at = NULL,
                        rolled_back_at = ? WHERE name = ?
                        """, arguments: [row.checksum, try History.encode(row.definition), MigrationState.rolledBack.rawValue,
                                         Self.stamp(row.startedAt), row.rolledBackAt.map(Self.stamp), name])
                }
                return .commit
            }
        }
    }

    private static func stamp(_ date: Date) -> String { History.timestamp.format(date) }
}
