import Foundation
import Logging
import Manifest
import Schema

/// Fills the new shape's columns of existing rows, in primary-key batches (ctid ranges for a table without a
/// key), each batch one autocommit statement that also saves the cursor, so a backfill cut off anywhere resumes
/// after the last committed batch. Only rows that existed when the backfill began are visited (up to the key it
/// saw last then); later rows got their values from the triggers. The backfill writes the values itself
/// (`teal.shape = backfill`, set on the session for the backfill's duration, keeps the triggers out of it).
/// Each batch is sized from the last one's time per row to take about `batchDuration`; a batch that waits for
/// row locks is retried with half as many rows. It pauses while a replica lags.
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
    /// Only rows for which this holds are updated (the rest of each range is passed over, keeping its row versions).
    var only: String?
    /// Each batch also records its transaction id in `teal.backfill_xids`, in its own statement (for the catch-up).
    var recordsTransactions = false

    private var qt: String { "\(Identifiers.quote(schema)).\(Identifiers.quote(table.name))" }
    private var byCtid: Bool { table.primaryKey.isEmpty }
    /// The key as column names and their types.
    private var key: [(name: String, type: String)] {
        byCtid ? [("ctid", "tid")] : table.primaryKey.map { k in (k, table.column(k)?.type ?? "text") }
    }
    /// The key read as text, under names that cannot shadow the columns it is sorted by.
    private var keyAsText: String { key.enumerated().map { "\(Identifiers.quote($0.element.name))::text AS _teal_k\($0.offset)" }.joined(separator: ", ") }
    private var onlyClause: String { only.map { " AND (\($0))" } ?? "" }
    private var keyList: String { key.map { Identifiers.quote($0.name) }.joined(separator: ", ") }
    private func keyTuple(from first: Int) -> String {
        "(" + key.enumerated().map { "$\($0.offset + first)::\($0.element.type)" }.joined(separator: ", ") + ")"
    }

    /// Tables the planner counts fewer rows in than this are counted for the progress total.
    static let countedBelow = 50_000

    func run(progress: (@Sendable (Int, Int) -> Void)?, shouldStop: (@Sendable () -> Bool)?) async throws {
        let s = session
        let id: [String?] = [schema, migration, table.name]
        var state = try await s.rows("""
            SELECT coalesce(array_to_json(cursor)::text, ''), coalesce(array_to_json(bound)::text, ''), done::text, total::text, finished::text
            FROM teal.backfill WHERE schema_name = $1 AND migration = $2 AND table_name = $3
            """, id).first
        if state == nil {
            let began = ContinuousClock.now
            // The bound, with the planner's row count (kept up to date by autovacuum and ANALYZE): the total is for
            // progress reports, and counting a large table would read all of it once more. A table the planner
            // counts under `countedBelow` rows (or has never analyzed) is counted.
            let answer = try await s.rows("""
                SELECT \(keyAsText), (SELECT reltuples::bigint::text FROM pg_class WHERE oid = to_regclass($1)) \
                FROM \(qt) ORDER BY \(keyList.descending) LIMIT 1
                """, [qt]).first
            let last = answer.map { Array($0.dropLast()) }
            var total = "0"
            if let answer {
                if let estimate = Int(answer.last.flatMap { $0 } ?? ""), estimate >= Self.countedBelow {
                    total = String(estimate)
                } else {
                    total = try await s.value("SELECT count(*)::text FROM \(qt)") ?? "0"
                }
            }
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
        let cursor: [String]? = Self.parse(state[0] ?? "")
        let bound = Self.parse(state[1] ?? "") ?? []
        let done = Int(state[2] ?? "0") ?? 0
        let total = Int(state[3] ?? "0") ?? 0
        guard bound.count == key.count else { return }
        progress?(done, total)

        // The batch settings hold for the whole backfill, at session level, so that a batch is one autocommit
        // statement. This session is the runner's own (one statement at a time, nothing else on it meanwhile), and
        // what it had before is put back when the backfill ends, fails or is interrupted; a crash ends the session
        // and its settings with it.
        let saved = try await sessionSettings()
        try await setSessionSettings([ShapeSetting.name: ShapeSetting.backfill,
                                      "lock_timeout": "\(Int(max(options.batchDuration * 5, 0.1) * 1000))ms",
                                      "statement_timeout": "\(Int(options.statementTimeout * 1000))ms"])
        do {
            try await batches(cursor: cursor, bound: bound, done: done, total: total, progress: progress, shouldStop: shouldStop)
        } catch {
            if !s.connection.isClosed, !((error as? SchemaError)?.connectionLost ?? false) { try? await setSessionSettings(saved) }
            throw error
        }
        try await setSessionSettings(saved)
    }

    /// The names `run` sets for the backfill, with their values in the session now (`teal.shape` '' when unset).
    private func sessionSettings() async throws -> [String: String] {
        let row = try await session.rows("""
            SELECT \(ShapeSetting.current), current_setting('lock_timeout'), current_setting('statement_timeout')
            """).first ?? []
        guard row.count == 3 else { throw SchemaError("cannot read the session's settings before the backfill of \(table.name)") }
        return [ShapeSetting.name: row[0] ?? "", "lock_timeout": row[1] ?? "0", "statement_timeout": row[2] ?? "0"]
    }

    /// Sets `values` for the session (not the transaction: there is none around them).
    private func setSessionSettings(_ values: [String: String]) async throws {
        let names = values.keys.sorted()
        try await session.exec("SELECT " + names.indices.map { "set_config($\($0 * 2 + 1), $\($0 * 2 + 2), false)" }.joined(separator: ", "),
                               names.flatMap { [$0, values[$0]] })
    }

    /// The batch loop, under the settings `run` gave the session. Each batch is one autocommit statement that
    /// updates its rows and saves the cursor, so the batch and its cursor commit together (or neither does).
    private func batches(cursor start: [String]?, bound: [String], done first: Int, total: Int,
                         progress: (@Sendable (Int, Int) -> Void)?, shouldStop: (@Sendable () -> Bool)?) async throws {
        let s = session
        let id: [String?] = [schema, migration, table.name]
        var cursor = start
        var done = first
        let sets = assignments.map { "\(Identifiers.quote($0.target)) = (\($0.expression))" }.joined(separator: ", ")
        var batch = min(1000, options.batchSize)
        // Without a key, a batch is a window of `pages` heap pages, sized from the rows the last window held.
        var pages = 1
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
                // $1... the bound, then the cursor (if any), then the row of teal.backfill.
                var binds: [String?] = bound
                var after = ""
                if let cursor {
                    after = " AND (\(keyList)) > \(keyTuple(from: key.count + 1))"
                    binds += cursor
                }
                let n = binds.count
                binds += id
                let backfillRow = "schema_name = $\(n + 1) AND migration = $\(n + 2) AND table_name = $\(n + 3)"
                let k = key.indices.map { "_teal_k\($0)" }
                let record = !recordsTransactions ? "" : """
                    x AS (INSERT INTO teal.backfill_xids (schema_name, migration, table_name, xid) \
                    VALUES ($\(n + 1), $\(n + 2), $\(n + 3), txid_current() % 4294967296) ON CONFLICT DO NOTHING),
                    """
                let answer: [String?]
                if byCtid {
                    // A window of heap pages from the cursor's page on: a TID range scan reads those pages only,
                    // so every batch costs what its rows cost, wherever it is in the table. The window ends before
                    // page `end` and the cursor moves to its last possible tuple. A row's new version that lands
                    // in a page still ahead within the bound is visited again: harmless, its values are the same.
                    // A cursor at a page's last possible tuple has done that page; an older cursor (the last ctid
                    // a batch took) leaves the rest of its page to do.
                    let from = cursor.flatMap { Self.tid($0.first ?? "") }.map { $0.offset == 65535 ? $0.page + 1 : $0.page } ?? 0
                    let end = from + pages
                    guard let last = Self.tid(bound[0])?.page else { throw SchemaError("the backfill bound of \(table.name) is not a tid: \(bound[0])") }
                    let finish = end > last
                    // $n+4: the window's end, $n+5: the cursor after it, $n+6: whether it reaches past the bound.
                    binds += ["(\(end),0)", "(\(end - 1),65535)", finish ? "true" : "false"]
                    answer = try await s.rows("""
                        WITH \(record) u AS (UPDATE \(qt) SET \(sets) WHERE ctid <= $1::tid AND ctid < $\(n + 4)::tid\(after)\(onlyClause) RETURNING 1),
                             c AS (SELECT count(*) AS n FROM u),
                             w AS (UPDATE teal.backfill SET cursor = ARRAY[$\(n + 5)::text], done = done + (SELECT n FROM c), finished = $\(n + 6)::boolean
                                   WHERE \(backfillRow))
                        SELECT c.n::text, $\(n + 6)::text, $\(n + 5)::text FROM c
                        """, binds).first ?? []
                } else {
                    // The batch ends at the key `batch` rows on (an index-only read) or at the bound, and the UPDATE
                    // takes the key range up to it: two index range scans (`WHERE key IN (SELECT ... LIMIT n)`
                    // would be planned as a hash semi-join over a scan of the whole table, every batch). The range
                    // stays right whatever writers do meanwhile: every row from the cursor to the end key is
                    // updated, and the next batch starts after the end key, so the ranges tile the key space up to
                    // the bound whatever their row counts turn out to be. A row inserted or re-keyed into a range
                    // after its batch got its values from the triggers; a deleted end key still delimits a range.
                    let e = key.indices.map { "e.\(Identifiers.quote(key[$0].name))" }
                    let boundTuple = keyTuple(from: 1)
                    answer = try await s.rows("""
                        WITH \(record) e AS (SELECT \(keyList) FROM \(qt) WHERE (\(keyList)) <= \(boundTuple)\(after) ORDER BY \(keyList) LIMIT 1 OFFSET \(batch - 1)),
                             r AS (SELECT \(key.indices.map { "coalesce(\(e[$0]), $\($0 + 1)::\(key[$0].type)) AS \(k[$0])" }.joined(separator: ", ")),
                                          \(e[0]) IS NULL OR (\(e.joined(separator: ", "))) = \(boundTuple) AS _teal_fin
                                   FROM (SELECT 1) AS _teal_one LEFT JOIN e ON true),
                             u AS (UPDATE \(qt) SET \(sets) WHERE (\(keyList)) <= (SELECT \(k.joined(separator: ", ")) FROM r)\(after)\(onlyClause) RETURNING 1),
                             c AS (SELECT count(*) AS n FROM u),
                             w AS (UPDATE teal.backfill SET cursor = (SELECT ARRAY[\(k.map { "\($0)::text" }.joined(separator: ", "))] FROM r),
                                       done = done + (SELECT n FROM c), finished = (SELECT _teal_fin FROM r)
                                   WHERE \(backfillRow))
                        SELECT c.n::text, r._teal_fin::text, \(k.map { "r.\($0)::text" }.joined(separator: ", ")) FROM c, r
                        """, binds).first ?? []
                }
                guard answer.count == 2 + key.count else { throw SchemaError("no answer to the backfill batch of \(table.name)") }
                count = Int(answer[0] ?? "0") ?? 0
                finished = answer[1] == "true"
                last = Array(answer.dropFirst(2))
            } catch let error as SchemaError where error.sqlState == "55P03" || error.sqlState == "40P01" {
                // Rows held by a writer: let it finish, take fewer rows next time.
                logger.debug("backfill batch gave way", metadata: ["phase": "backfill batch (lock wait)", "table": "\(table.name)", "size": "\(batch)",
                                                                   "ms": "\(PostgresSession.milliseconds(since: began))"])
                batch = max(10, batch / 2)
                pages = max(1, pages / 2)
                try await Task.sleep(nanoseconds: 20_000_000)
                continue
            }
            logger.debug("backfill batch", metadata: ["phase": "backfill batch", "table": "\(table.name)", "size": "\(batch)", "rows": "\(count)",
                                                      "ms": "\(PostgresSession.milliseconds(since: began))"])
            done += count
            // The total may be the planner's estimate: never below what is done, and what is done when all is.
            progress?(done, finished && only == nil && total >= Self.countedBelow ? done : max(total, done))
            if finished { break }
            cursor = last.map { $0 ?? "" }
            let took = Date().timeIntervalSince(t0)
            // A pass with `only` updates few of the rows it covers; its time goes by the rows of its key range.
            let next = Self.nextBatch(batch, rows: only == nil || byCtid ? count : batch, took: took, options: options)
            if byCtid { pages = Self.nextWindow(pages, rows: count, nextRows: next, took: took, options: options) }
            batch = next
            batches += 1
            if batches % 20 == 0 { try await waitForReplicas() }
        }
        let seconds = Date().timeIntervalSince(started)
        logger.info("backfilled", metadata: ["table": "\(table.name)", "rows": "\(done)", "seconds": "\(String(format: "%.2f", seconds))"])
    }

    /// The size of the next batch: as many rows as the last batch's time per row fits in `batchDuration`, at most
    /// twice the last size (one fast batch on a noisy machine says little) and at least 100 rows. The time per row
    /// includes the batch's fixed cost, so the estimate errs towards smaller batches; a writer that reaches a row
    /// of the running batch waits for its commit, which is why batches aim at `batchDuration` and no longer.
    static func nextBatch(_ batch: Int, rows: Int, took: TimeInterval, options: PostgresSchemaOptions) -> Int {
        guard rows > 0, took > 0 else { return min(options.batchSize, batch * 2) }
        let fits = Int(options.batchDuration / (took / Double(rows)))
        return max(min(100, options.batchSize), min(options.batchSize, batch * 2, fits))
    }

    /// The next window of heap pages for a table without a key: as many pages as held `nextRows` rows in the last
    /// window, and no more than its time per page fits in `batchDuration` (pages the `only` condition passes over
    /// cost time too), at most twice the last window and at least one page.
    static func nextWindow(_ pages: Int, rows: Int, nextRows: Int, took: TimeInterval, options: PostgresSchemaOptions) -> Int {
        var next = pages * 2
        if rows > 0 { next = min(next, Int(Double(nextRows) * Double(pages) / Double(rows))) }
        if took > 0 { next = min(next, Int(options.batchDuration * Double(pages) / took)) }
        return max(1, min(1 << 14, next))
    }

    /// The page and offset of a tid written `(page,offset)`.
    static func tid(_ text: String) -> (page: Int, offset: Int)? {
        guard text.hasPrefix("("), text.hasSuffix(")") else { return nil }
        let parts = text.dropFirst().dropLast().split(separator: ",")
        guard parts.count == 2, let page = Int(parts[0]), let offset = Int(parts[1]) else { return nil }
        return (page, offset)
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
