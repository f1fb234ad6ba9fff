import Foundation
import Logging
import Manifest
import Schema

/// Fills the new shape's columns of existing rows, in primary-key batches (ctid ranges for a table without a
/// key), each batch one transaction that also saves the cursor, so a backfill cut off anywhere resumes after the
/// last committed batch. Only rows that existed when the backfill began are visited (up to the key it saw
/// last then); later rows got their values from the triggers. The backfill writes the values itself
/// (`teal.shape = backfill` keeps the triggers out of it). Batches shrink when they take longer than
/// `batchDuration` or wait for row locks and grow back when fast; it pauses while a replica lags.
struct BackfillRunner {
    let session: PostgresSession
    let schema: String
    let migration: String
    let table: Catalog.Table
    let assignments: [Assignment]
    let options: PostgresSchemaOptions
    let logger: Logger
    /// What an interruption calls this fill, the migration it names, and how it is resumed.
    var kind = "backfill"
    var named: String?
    var resume = "start again to resume"

    private var qt: String { "\(Identifiers.quote(schema)).\(Identifiers.quote(table.name))" }
    private var byCtid: Bool { table.primaryKey.isEmpty }
    /// The key as column names and their types.
    private var key: [(name: String, type: String)] {
        byCtid ? [("ctid", "tid")] : table.primaryKey.map { k in (k, table.column(k)?.type ?? "text") }
    }
    /// The key read as text, under names that cannot shadow the columns it is sorted by.
    private var keyAsText: String { key.enumerated().map { "\(Identifiers.quote($0.element.name))::text AS _teal_k\($0.offset)" }.joined(separator: ", ") }
    private var keyList: String { key.map { Identifiers.quote($0.name) }.joined(separator: ", ") }
    private func keyTuple(from first: Int) -> String {
        "(" + key.enumerated().map { "$\($0.offset + first)::\($0.element.type)" }.joined(separator: ", ") + ")"
    }

    func run(progress: (@Sendable (Int, Int) -> Void)?, shouldStop: (@Sendable () -> Bool)?) async throws {
        let s = session
        let id: [String?] = [schema, migration, table.name]
        var state = try await s.rows("""
            SELECT coalesce(array_to_json(cursor)::text, ''), coalesce(array_to_json(bound)::text, ''), done::text, total::text, finished::text
            FROM teal.backfill WHERE schema_name = $1 AND migration = $2 AND table_name = $3
            """, id).first
        if state == nil {
            let began = ContinuousClock.now
            let last = try await s.rows("SELECT \(keyAsText) FROM \(qt) ORDER BY \(keyList.descending) LIMIT 1").first
            let total = try await s.value("SELECT count(*)::text FROM \(qt)") ?? "0"
            let boundArray = last.map { "ARRAY[" + $0.indices.map { "$\($0 + 6)" }.joined(separator: ", ") + "]::text[]" } ?? "NULL"
            try await s.exec("""
                INSERT INTO teal.backfill (schema_name, migration, table_name, bound, total, finished) VALUES ($1, $2, $3, \(boundArray), $4::bigint, $5::boolean)
                ON CONFLICT DO NOTHING
                """, id + [total, last == nil ? "true" : "false"] + (last ?? []))
            state = ["", last.map { Self.json($0) } ?? "", "0", total, last == nil ? "true" : "false"]
            logger.debug("backfill bounds read", metadata: ["phase": "backfill bounds", "table": "\(table.name)", "rows": "\(total)",
                                                            "ms": "\(PostgresSession.milliseconds(since: began))"])
        }
        guard let state, state[4] != "true" else { return }
        var cursor: [String]? = Self.parse(state[0] ?? "")
        let bound = Self.parse(state[1] ?? "") ?? []
        var done = Int(state[2] ?? "0") ?? 0
        let total = Int(state[3] ?? "0") ?? 0
        guard bound.count == key.count else { return }
        progress?(done, total)

        let sets = assignments.map { "\(Identifiers.quote($0.target)) = (\($0.expression))" }.joined(separator: ", ")
        var batch = min(1000, options.batchSize)
        var batches = 0
        let started = Date()
        while true {
            if shouldStop?() == true {
                throw SchemaError(migration: named ?? migration, interruption: "\(kind) of \(table.name) interrupted after \(done) of \(total) rows; \(resume)")
            }
            let t0 = Date()
            let began = ContinuousClock.now
            let (count, last, finished): (Int, [String?], Bool)
            do {
                (count, last, finished) = try await s.transaction {
                    try await s.exec("""
                        SELECT set_config('\(ShapeSetting.name)', '\(ShapeSetting.backfill)', true),
                               set_config('lock_timeout', '\(Int(max(options.batchDuration * 5, 0.1) * 1000))ms', true),
                               set_config('statement_timeout', '\(Int(options.statementTimeout * 1000))ms', true)
                        """)
                    var binds: [String?] = bound
                    var condition = "(\(keyList)) <= \(keyTuple(from: 1))"
                    if let cursor {
                        condition += " AND (\(keyList)) > \(keyTuple(from: key.count + 1))"
                        binds += cursor
                    }
                    let count: Int, last: [String?], finished: Bool
                    if byCtid {
                        let row = try await s.rows("""
                            WITH u AS (
                                UPDATE \(qt) SET \(sets)
                                WHERE (\(keyList)) IN (SELECT \(keyList) FROM \(qt) WHERE \(condition) ORDER BY \(keyList) LIMIT \(batch))
                                RETURNING \(keyList))
                            SELECT c.n, m.* FROM (SELECT count(*)::text AS n FROM u) c
                            LEFT JOIN LATERAL (SELECT \(keyAsText) FROM u ORDER BY \(keyList.descending) LIMIT 1) m ON true
                            """, binds).first ?? ["0"]
                        count = Int(row[0] ?? "0") ?? 0
                        last = Array(row.dropFirst())
                        finished = count < batch
                    } else {
                        // The batch ends at the key `batch` rows on (read from the index alone), and the UPDATE
                        // takes the key range up to it: an index range scan. (`WHERE key IN (SELECT ... LIMIT n)`
                        // is planned as a hash semi-join over a scan of the whole table, every batch.)
                        let end = try await s.rows("SELECT \(keyAsText) FROM \(qt) WHERE \(condition) ORDER BY \(keyList) LIMIT 1 OFFSET \(batch - 1)", binds).first
                        let upper = end ?? bound
                        var range = "(\(keyList)) <= \(keyTuple(from: 1))"
                        var rangeBinds: [String?] = upper
                        if let cursor {
                            range += " AND (\(keyList)) > \(keyTuple(from: key.count + 1))"
                            rangeBinds += cursor
                        }
                        last = upper
                        finished = end == nil || end! == bound
                        // The cursor is saved by the same statement, so the rows it locks are released one round
                        // trip sooner (a writer that reaches one of them waits for this batch's commit).
                        let n = rangeBinds.count
                        let cursorArray = "ARRAY[" + upper.indices.map { "$\($0 + n + 5)" }.joined(separator: ", ") + "]::text[]"
                        count = Int(try await s.value("""
                            WITH u AS (UPDATE \(qt) SET \(sets) WHERE \(range) RETURNING 1),
                                 n AS (SELECT count(*) AS n FROM u),
                                 c AS (UPDATE teal.backfill SET cursor = \(cursorArray), done = done + (SELECT n FROM n),
                                           finished = $\(n + 4)::boolean
                                       WHERE schema_name = $\(n + 1) AND migration = $\(n + 2) AND table_name = $\(n + 3))
                            SELECT n::text FROM n
                            """, rangeBinds + id + [finished ? "true" : "false"] + upper) ?? "0") ?? 0
                        return (count, last, finished)
                    }
                    if count > 0 || !finished {
                        try await s.exec("""
                            UPDATE teal.backfill SET cursor = ARRAY[\(last.indices.map { "$\($0 + 6)" }.joined(separator: ", "))]::text[],
                                done = done + $4::bigint, finished = $5::boolean
                            WHERE schema_name = $1 AND migration = $2 AND table_name = $3
                            """, id + [String(count), finished ? "true" : "false"] + last)
                    } else {
                        try await s.exec("UPDATE teal.backfill SET finished = true WHERE schema_name = $1 AND migration = $2 AND table_name = $3", id)
                    }
                    return (count, last, finished)
                }
            } catch let error as SchemaError where error.sqlState == "55P03" || error.sqlState == "40P01" {
                // Rows held by a writer: let it finish, take fewer rows next time.
                logger.debug("backfill batch gave way", metadata: ["phase": "backfill batch (lock wait)", "table": "\(table.name)", "size": "\(batch)",
                                                                   "ms": "\(PostgresSession.milliseconds(since: began))"])
                batch = max(10, batch / 2)
                try await Task.sleep(nanoseconds: 20_000_000)
                continue
            }
            logger.debug("backfill batch", metadata: ["phase": "backfill batch", "table": "\(table.name)", "size": "\(batch)", "rows": "\(count)",
                                                      "ms": "\(PostgresSession.milliseconds(since: began))"])
            done += count
            progress?(done, total)
            if finished { break }
            cursor = last.map { $0 ?? "" }
            let took = Date().timeIntervalSince(t0)
            if took > options.batchDuration { batch = max(100, batch / 2) }
            else if took < options.batchDuration / 2 { batch = min(options.batchSize, batch * 2) }
            batches += 1
            if batches % 20 == 0 { try await waitForReplicas() }
        }
        let seconds = Date().timeIntervalSince(started)
        logger.info("backfilled", metadata: ["table": "\(table.name)", "rows": "\(done)", "seconds": "\(String(format: "%.2f", seconds))"])
    }

    /// Pauses while a streaming replica replays more than `maxReplicationLag` behind.
    private func waitForReplicas() async throws {
        for _ in 0..<600 {
            let lag = try await session.value("SELECT coalesce(max(extract(epoch FROM replay_lag)), 0)::text FROM pg_stat_replication")
            guard let lag = lag.flatMap(Double.init), lag > options.maxReplicationLag else { return }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    static func parse(_ json: String) -> [String]? {
        guard !json.isEmpty, let data = json.data(using: .utf8), let values = try? JSONDecoder().decode([String].self, from: data) else { return nil }
        return values
    }

    static func json(_ values: [String?]) -> String {
        String(decoding: (try? JSONEncoder().encode(values.map { $0 ?? "" })) ?? Data(), as: UTF8.self)
    }
}

private extension String {
    /// `"a", "b"` → `"a" DESC, "b" DESC`.
    var descending: String { split(separator: ",").map { "\($0.trimmingCharacters(in: .whitespaces)) DESC" }.joined(separator: ", ") }
}
