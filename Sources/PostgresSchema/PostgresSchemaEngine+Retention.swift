import Foundation
import Logging
import Manifest
import Schema

/// The retention window (see Retention.swift): complete records what it put aside, and a purge drops what has
/// been aside longer than `options.retention`.
extension PostgresSchemaEngine {
    /// Drops what completed migrations put aside longer than the retention window ago, as of `now` (nil: the
    /// database server's clock). Cheap when nothing is due: one query, no lock. When another runner holds the
    /// migration lock it does nothing (that runner purges at its start or complete, or the next call does).
    /// Returns what it purged; an object it could not drop is logged and tried again next time.
    @discardableResult
    public func purge(now: Date? = nil) async throws -> [AsideObject] {
        try await withSession(lock: false) { s in
            guard try await s.value("SELECT to_regclass('teal.aside')::text") != nil else { return [] }
            guard try await !self.due(s, now: now).isEmpty else { return [] }
            guard try await self.tryRunnerLock(s) else {
                self.logger.info("purge skipped: another runner holds the migration lock")
                return []
            }
            return try await self.purgeDue(s, now: now)
        }
    }

    /// Rows of `teal.aside` whose window has passed.
    func due(_ s: PostgresSession, now: Date?) async throws -> [AsideObject] {
        let rows = try await s.rows(RetentionSQL.due, [schema, now.map { String($0.timeIntervalSince1970) }, String(options.retention)])
        return rows.compactMap { r in
            guard let kind = AsideObject.Kind(rawValue: r[0] ?? ""), let holder = r[1], let name = r[2] else { return nil }
            return AsideObject(kind: kind, holder: holder, name: name, migration: r[3] ?? "")
        }
    }

    /// Purges what is due, on a session holding the runner lock; each object in its own DDL transaction, which
    /// also deletes its row.
    func purgeDue(_ s: PostgresSession, now: Date?) async throws -> [AsideObject] {
        var purged: [AsideObject] = []
        for object in try await due(s, now: now) {
            guard RetentionSQL.isTeals(object) else {
                logger.warning("teal.aside names something that is not teal's; left alone", metadata: ["object": "\(object)"])
                continue
            }
            do {
                try await purge(s, object)
                purged.append(object)
                logger.info("purged after the retention window", metadata: ["object": "\(object)"])
            } catch let error as SchemaError where error.connectionLost {
                throw error
            } catch {
                logger.warning("purge failed; trying again next time", metadata: ["object": "\(object)", "error": "\(PostgresSession.message(of: error))"])
            }
        }
        return purged
    }

    private func purge(_ s: PostgresSession, _ object: AsideObject) async throws {
        let forget = [schema, object.kind.rawValue, object.holder, object.name]
        switch object.kind {
        case .column:
            // Wherever the column is now (a later migration may have renamed its table); the row goes last.
            let tables = try await s.rows(RetentionSQL.columnHolders, [schema, object.name]).compactMap { $0[0] }
            for table in tables {
                try await s.ddl(on: "\(schema).\(table)", options: options) {
                    try await s.exec(RetentionSQL.dropColumn(schema: schema, table: table, object))
                }
            }
            try await s.transaction { try await s.exec(RetentionSQL.forget, forget) }
        case .table:
            try await s.ddl(on: "\(object.holder).\(object.name)", options: options) {
                try await s.exec(RetentionSQL.dropTable(object))
                try await s.exec(RetentionSQL.forget, forget)
            }
            try await s.ddl(on: nil, options: options) { try await s.exec(RetentionSQL.dropSchemaIfEmpty(object.holder)) }
        }
    }

    /// Records what `plan`'s complete put aside, at `at` (nil: now); in the transaction that marks the migration
    /// completed.
    func recordAside(_ s: PostgresSession, _ plan: MigrationPlan, at: String? = nil) async throws {
        try await s.exec(RetentionSQL.recordColumns, [plan.schema, plan.migration, RetentionSQL.droppedColumnPrefix(tag: plan.tag), at])
        let kept = RetentionSQL.keptSchemaPrefix + plan.tag
        for table in plan.droppedTables {
            try await s.exec(RetentionSQL.recordTable, [plan.schema, plan.migration, kept, table, at])
        }
    }

    /// When `teal.aside` is new in a database whose migrations teal ran before it existed: what their completes put
    /// aside is recorded as put aside when they completed, so the window applies to it too.
    func recordEarlierCompletes(_ s: PostgresSession) async throws {
        let rows = try await s.rows("""
            SELECT schema_name, name, definition, catalog, completed_at::text FROM teal.migrations
            WHERE state = 'completed' AND completed_at IS NOT NULL ORDER BY schema_name, number, name
            """)
        for r in rows {
            guard let schema = r[0], let migration = try? JSONDecoder().decode(Migration.self, from: Data((r[2] ?? "").utf8)),
                  let catalog = try? JSONDecoder().decode(Catalog.self, from: Data((r[3] ?? "").utf8)),
                  let plan = try? MigrationPlan.make(migration, catalog: catalog, schema: schema) else { continue }
            try await recordAside(s, plan, at: r[4])
        }
    }
}
