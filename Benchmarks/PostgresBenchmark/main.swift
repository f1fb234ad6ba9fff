// PostgreSQL schema engine benchmark: the split-name migration on users(id serial pk, name text) filled with
// generate_series, in a database teal manages (its 0001 made the table), on a private PostgreSQL cluster
// (TestSupport's PostgresCluster), and a printed table.
//
//   TEAL_BENCH_SIZES=100000,1000000,10000000   table sizes (default); for each: (1) the backfill rate of `start`,
//                                              (3) `start` ÷ one ALTER TABLE ADD COLUMN + UPDATE on a copy (five
//                                              rounds up to 100,000 rows, three up to 1,000,000, medians)
//   TEAL_BENCH_WRITER_SIZE=1000000             size of the run with a concurrent writer during `start` (3b); 0 skips
//   TEAL_BENCH_TRIGGER_SIZE=100000             size of the trigger-cost runs (2); 0 skips
//   TEAL_BENCH_KEYLESS_SIZES=100000,1000000    (1k) the backfill rate of `start` on the same table without its
//                                              primary key (windows of heap pages), against the keyed one; empty skips
//   TEAL_BENCH_INSERTS=5000                    single-row inserts per round in (2)
//   TEAL_BENCH_LOG=1                           the engine's log on stderr (=debug: every step and batch)
//   TEAL_BENCH_SLOWEST=5                       how many of the writer's slowest writes (3b) are placed on start's timeline
//
// An empty TEAL_BENCH_SIZES runs no (1)/(3) size; with TEAL_BENCH_TRIGGER_SIZE=0 only the writer part (3b) runs.
// In (3b) the engine's debug log (every DDL transaction, the trigger functions, each backfill batch, the state
// update, with how long each took) is kept in memory with the time of each message, and the cluster logs lock
// waits of the writer (after 10 ms), its statements slower than 20 ms on the server, checkpoints and autovacuum,
// so the slowest writes are shown against what the engine and the server were doing at the time.
//
// Every database of one size is a FILE_COPY of one seeded, vacuumed (frozen) database, so each measurement
// starts from the same pages. Ratios pair measurements of the same run.
import Foundation
import Logging
import Manifest
import NIOCore
import NIOPosix
import PostgresNIO
import PostgresSchema
import Schema
import TestSupport

nonisolated(unsafe) let env = ProcessInfo.processInfo.environment
let sizes = (env["TEAL_BENCH_SIZES"] ?? "100000,1000000,10000000").split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
let writerSize = env["TEAL_BENCH_WRITER_SIZE"].flatMap(Int.init) ?? 1_000_000
let triggerSize = env["TEAL_BENCH_TRIGGER_SIZE"].flatMap(Int.init) ?? 100_000
let insertCount = env["TEAL_BENCH_INSERTS"].flatMap(Int.init) ?? 5000
let slowest = env["TEAL_BENCH_SLOWEST"].flatMap(Int.init) ?? 5
let keylessSizes = (env["TEAL_BENCH_KEYLESS_SIZES"] ?? "100000,1000000").split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
let rounds = 3

// MARK: the engine's timeline

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// One message of the engine's log, with when it was logged; one with an `ms` entry closes a phase that
/// lasted that long (a DDL transaction, a backfill batch).
struct Event: Sendable {
    var at: UInt64
    var message: String
    var metadata: [String: String]
    var began: UInt64 { metadata["ms"].flatMap(Double.init).map { at - min(at, UInt64($0 * 1e6)) } ?? at }
}

final class Timeline: @unchecked Sendable {
    private let lock = NSLock()
    private var recording = false
    private var events: [Event] = []
    func record(_ e: @autoclosure () -> Event) { lock.lock(); defer { lock.unlock() }; if recording { events.append(e()) } }
    func begin() { lock.lock(); defer { lock.unlock() }; recording = true; events = [] }
    func end() -> [Event] { lock.lock(); defer { lock.unlock() }; recording = false; return events }
}
nonisolated(unsafe) let timeline = Timeline()

/// The engine's messages go to the timeline (debug and up, while it records) and to stderr with TEAL_BENCH_LOG=1.
struct BenchLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let echo: Logger.Level
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let at = now()
        timeline.record(Event(at: at, message: event.message.description,
                              metadata: (event.metadata ?? [:]).merging(metadata) { a, _ in a }.mapValues { $0.description }))
        if event.level >= echo {
            let m = (event.metadata ?? [:]).map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
            FileHandle.standardError.write(Data("\(Date()) \(event.level) \(event.message) \(m)\n".utf8))
        }
    }
}

LoggingSystem.bootstrap { label in
    let echo: Logger.Level = env["TEAL_BENCH_LOG"] == "debug" ? .debug : env["TEAL_BENCH_LOG"] == "1" ? .info : .warning
    return BenchLogHandler(logLevel: label == "teal.schema.postgres" ? .debug : echo, echo: echo)
}
nonisolated(unsafe) let logger = Logger(label: "teal.bench.postgres")

nonisolated(unsafe) let upFirst = "split_part(name, ' ', 1)"
nonisolated(unsafe) let upLast = "CASE WHEN strpos(name, ' ') > 0 THEN substr(name, strpos(name, ' ') + 1) ELSE '' END"
nonisolated(unsafe) let split = Migration(name: "0002_split_name", number: 2, checksum: "bench", operations: [
    .addColumn(AddColumn(table: "users", column: Manifest.ColumnDefinition(name: "first_name", type: "text", nullable: true), up: upFirst)),
    .addColumn(AddColumn(table: "users", column: Manifest.ColumnDefinition(name: "last_name", type: "text", nullable: true), up: upLast)),
    .dropColumn(DropColumn(table: "users", column: "name", down: "trim(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))")),
])

// MARK: helpers

func secondsSince(_ t: UInt64) -> Double { Double(now() - t) / 1e9 }

final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func with<R>(_ body: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}

nonisolated(unsafe) let cluster = try PostgresCluster.get()

func connect(_ database: String, options: String? = nil) async throws -> PostgresConnection {
    var c = PostgresConnection.Configuration(host: "127.0.0.1", port: cluster.port, username: cluster.user,
                                             password: cluster.password, database: database, tls: .disable)
    if let options { c.options.additionalStartupParameters = [("options", options)] }
    return try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: c,
                                                id: Int.random(in: 1...Int(Int32.max)), logger: logger)
}

extension PostgresConnection {
    /// Runs `sql` (no binds) and returns its rows as text.
    @discardableResult
    func run(_ sql: String) async throws -> [[String?]] {
        var out: [[String?]] = []
        for try await row in try await query(PostgresQuery(unsafeSQL: sql), logger: logger) {
            out.append(try row.map { try $0.decode(String?.self) })
        }
        return out
    }

    func timed(_ sql: String) async throws -> Double {
        let t = now()
        try await run(sql)
        return secondsSince(t)
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? .nan : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s[min(s.count - 1, Int((Double(s.count) * p).rounded(.up)) - 1)]
}

func fmt(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }
func rate(_ rows: Int, _ seconds: Double) -> String { String(format: "%.0f", Double(rows) / seconds) }

func engine(_ database: String) throws -> PostgresSchemaEngine {
    let settings = try PostgresSettings(url: cluster.url(database), environment: ["PGPASSFILE": cluster.passFile])
    return PostgresSchemaEngine(settings: settings, options: PostgresSchemaOptions(), logger: Logger(label: "teal.schema.postgres"))
}

/// The migration that made `users` in a database teal manages.
nonisolated(unsafe) let createUsers = Migration(name: "0001_create_users", number: 1, checksum: "bench-0001", operations: [
    .createTable(CreateTable(name: "users", columns: [
        Manifest.ColumnDefinition(name: "id", type: "serial", nullable: false, primaryKey: true),
        Manifest.ColumnDefinition(name: "name", type: "text", nullable: true),
    ])),
])

/// A seeded database of `rows` rows, vacuumed and frozen; copies of it are made with `copy`. It is one teal manages,
/// as a migration 0002 finds it: teal's 0001 made `users` (with the state tables), then rows came.
func seed(_ rows: Int) async throws -> String {
    let name = try cluster.createDatabase("seed\(rows)")
    let e = try engine(name)
    try await e.start(createUsers)
    try await e.complete(createUsers.name)
    let c = try await connect(name)
    try await c.run("INSERT INTO users (name) SELECT 'First' || i || ' Last' || i FROM generate_series(1, \(rows)) i")
    try await c.run("VACUUM (FREEZE, ANALYZE) users")
    try await c.run("CHECKPOINT")
    try await c.close().get()
    return name
}

func copy(_ seed: String, _ label: String) throws -> String {
    let name = "\(label)_\(UUID().uuidString.prefix(8).lowercased())"
    try cluster.psql("postgres", "CREATE DATABASE \"\(name)\" TEMPLATE \"\(seed)\" STRATEGY FILE_COPY")
    return name
}

func drop(_ database: String) {
    _ = try? cluster.psql("postgres", "DROP DATABASE IF EXISTS \"\(database)\" WITH (FORCE)")
}

/// Rows whose new columns differ from what `up` gives (0 when the backfill is complete and right).
func unfilled(_ c: PostgresConnection) async throws -> Int {
    let sql = "SELECT count(*)::text FROM users WHERE first_name IS DISTINCT FROM \(upFirst) OR last_name IS DISTINCT FROM \(upLast)"
    return (try await c.run(sql).first?.first ?? nil).flatMap { Int($0) } ?? -1
}

struct StartRun {
    /// When the `start` call began and returned (uptime ns).
    var began: UInt64 = 0
    var ended: UInt64 = 0
    var start = 0.0
    var backfill = 0.0
    var rows = 0
    var unfilled = 0
}

/// `start` on `database`, timing the whole call and the backfill (first to last progress report).
func timedStart(_ database: String) async throws -> StartRun {
    let marks = Locked<(first: UInt64?, last: UInt64, done: Int)>((nil, 0, 0))
    let e = try engine(database)
    let t = now()
    try await e.start(split, progress: { done, _ in
        let at = now()
        marks.with { m in
            if m.first == nil { m.first = at }
            m.last = at
            m.done = done
        }
    })
    let ended = now()
    let total = secondsSince(t)
    let m = marks.with { $0 }
    let c = try await connect(database)
    let bad = try await unfilled(c)
    try await c.close().get()
    return StartRun(began: t, ended: ended, start: total, backfill: Double(m.last - (m.first ?? m.last)) / 1e9, rows: m.done, unfilled: bad)
}

/// One ALTER TABLE adding both columns and one UPDATE computing them, as a single transaction each (autocommit).
func baseline(_ database: String) async throws -> Double {
    let c = try await connect(database)
    let t = now()
    try await c.run("ALTER TABLE users ADD COLUMN first_name text, ADD COLUMN last_name text")
    try await c.run("UPDATE users SET first_name = \(upFirst), last_name = \(upLast)")
    let s = secondsSince(t)
    try await c.close().get()
    return s
}

func machine() -> String {
    let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
        .first { $0.hasPrefix("model name") }.map { $0.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "?"
    let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
    return "\(ProcessInfo.processInfo.activeProcessorCount) CPUs (\(cpu)), \(ProcessInfo.processInfo.physicalMemory >> 30) GiB, load \(load)"
}

func loadNow() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "?"
}

print("PostgreSQL schema engine benchmark — \(cluster.version); \(machine())")
print("cluster: TestSupport's PostgresCluster (fsync=off, synchronous_commit=off, shared_buffers=128MB); engine defaults (batchSize 10000, batchDuration 0.02 s)")
print("")

var table: [[String]] = []
@MainActor func row(_ cells: String...) { table.append(cells); print(cells.joined(separator: " | ")); fflush(nil) }

// MARK: (1) backfill rate, (3) start ÷ ALTER + UPDATE

var triggerDatabases: (plain: String, started: String)?
for n in sizes {
    let seedDB = try await seed(n)
    // Sizes up to 1,000,000 rows get `rounds` rounds, each on fresh copies, the baseline first in odd rounds and
    // `start` first in even ones; the figures are the medians of the rounds (each round's ratio pairs its own two).
    let roundsHere = n <= 100_000 ? 5 : n <= 1_000_000 ? rounds : 1
    var runs: [(base: Double, start: StartRun, batches: String, load: String)] = []
    var plainDB = "", startDB = ""
    for round in 0..<roundsHere {
        if round > 0 { drop(plainDB); drop(startDB) }
        plainDB = try copy(seedDB, "plain\(n)")
        startDB = try copy(seedDB, "start\(n)")
        let loadBefore = loadNow()
        var base = 0.0
        if round % 2 == 0 { base = try await baseline(plainDB) }
        timeline.begin()
        let s = try await timedStart(startDB)
        let batches = batchSummary(timeline.end())
        if round % 2 == 1 { base = try await baseline(plainDB) }
        runs.append((base, s, batches, "\(loadBefore) → \(loadNow())"))
    }
    let mid = runs.sorted { $0.start.backfill < $1.start.backfill }[runs.count / 2]
    let s = mid.start
    let ratios = runs.map { $0.start.start / $0.base }
    let ratio = median(ratios)
    let each = runs.count > 1 ? "rounds \(runs.map { "\(fmt($0.start.start)) / \(fmt($0.base)) = \(fmt($0.start.start / $0.base))x" }.joined(separator: ", ")); median" : ""
    row("(1) backfill \(n) rows", "\(fmt(s.backfill)) s", "\(rate(n, s.backfill)) rows/s",
        "\(runs.count > 1 ? "median of \(runs.count) (\(runs.map { rate(n, $0.start.backfill) }.joined(separator: ", ")) rows/s), that round: " : "")start \(fmt(s.start)) s (\(rate(n, s.start)) rows/s overall); \(s.rows) reported, \(runs.map(\.start.unfilled).reduce(0, +)) wrong; \(mid.batches); load \(mid.load)",
        "≥ 100000 rows/s — \(Double(n) / s.backfill >= 100_000 ? "met" : "missed")")
    row("(3) start ÷ ALTER + UPDATE, \(n) rows", "\(fmt(median(runs.map(\.start.start)))) / \(fmt(median(runs.map(\.base)))) s", "\(fmt(ratio))x", each,
        "≤ 1.5x — \(ratio <= 1.5 ? "met" : "missed")")
    if n == triggerSize {
        triggerDatabases = (plainDB, startDB)
    } else {
        drop(plainDB)
        drop(startDB)
    }
    drop(seedDB)
}

// MARK: (1k) backfill rate without a key

for n in keylessSizes {
    let seedDB = try await seed(n)
    let keyedDB = try copy(seedDB, "keyed\(n)")
    let keylessDB = try copy(seedDB, "keyless\(n)")
    let c = try await connect(keylessDB)
    try await c.run("ALTER TABLE users DROP CONSTRAINT users_pkey")
    try await c.close().get()
    let loadBefore = loadNow()
    let keyed = try await timedStart(keyedDB)
    timeline.begin()
    let keyless = try await timedStart(keylessDB)
    let batches = batchSummary(timeline.end())
    row("(1k) backfill \(n) rows without a key", "\(fmt(keyless.backfill)) s", "\(rate(n, keyless.backfill)) rows/s",
        "keyed: \(fmt(keyed.backfill)) s, \(rate(n, keyed.backfill)) rows/s; keyless ÷ keyed \(fmt(keyless.backfill / keyed.backfill))x; \(keyless.rows) reported, \(keyless.unfilled) wrong; \(batches); load \(loadBefore) → \(loadNow())",
        "≥ 100000 rows/s — \(Double(n) / keyless.backfill >= 100_000 ? "met" : "missed")")
    drop(keyedDB)
    drop(keylessDB)
    drop(seedDB)
}

// MARK: (2) trigger cost on old-shape writes

if triggerSize > 0 {
    let dbs: (plain: String, started: String)
    if let t = triggerDatabases { dbs = t } else {
        let seedDB = try await seed(triggerSize)
        dbs = (try copy(seedDB, "plain\(triggerSize)"), try copy(seedDB, "start\(triggerSize)"))
        _ = try await baseline(dbs.plain)
        _ = try await timedStart(dbs.started)
    }
    // Both tables now have id, name, first_name, last_name filled; only `started` has the migration's triggers.
    let plain = try await connect(dbs.plain)
    let started = try await connect(dbs.started)
    let triggers = try await started.run("SELECT count(*)::text FROM pg_trigger WHERE tgrelid = 'public.users'::regclass AND NOT tgisinternal").first?.first ?? nil
    // The statement of the goal rewrites every row with the value it had (the UPDATE triggers skip a row left
    // byte for byte as it was); the second one changes every name, so the up trigger computes both new columns.
    // The third line pairs the same statement with one that computes the new columns itself on the plain table
    // (what an application writing both shapes by hand would run): the trigger's own overhead, without the cost of
    // the `up` expressions, which any design pays.
    let computed = "UPDATE users SET name = 'X' || name, first_name = split_part('X' || name, ' ', 1), " +
        "last_name = CASE WHEN strpos('X' || name, ' ') > 0 THEN substr('X' || name, strpos('X' || name, ' ') + 1) ELSE '' END"
    for (statement, plainStatement) in [("UPDATE users SET name = name || ''", nil), ("UPDATE users SET name = 'X' || name", nil),
                                        ("UPDATE users SET name = 'X' || name", computed)] {
        var bulk: [String: [Double]] = ["plain": [], "triggers": []]
        for round in 0..<rounds {
            for (label, c) in (round % 2 == 0 ? [("plain", plain), ("triggers", started)] : [("triggers", started), ("plain", plain)]) {
                try await c.run("VACUUM ANALYZE users")
                try await c.run("CHECKPOINT")
                bulk[label]!.append(try await c.timed(label == "plain" ? plainStatement ?? statement : statement))
            }
        }
        let bp = median(bulk["plain"]!), bt = median(bulk["triggers"]!)
        let against = plainStatement == nil ? "plain" : "plain computing first_name and last_name in the statement"
        row("(2) `\(statement)`, \(triggerSize) rows, \(against) / triggers (median of \(rounds))", "\(fmt(bp, 3)) / \(fmt(bt, 3)) s",
            "\(fmt(bt / bp))x", "rounds plain \(bulk["plain"]!.map { fmt($0, 3) }.joined(separator: ", ")); triggers \(bulk["triggers"]!.map { fmt($0, 3) }.joined(separator: ", ")); \(triggers ?? "?") triggers on users",
            "≤ 1.5x — \(bt / bp <= 1.5 ? "met" : "missed")")
    }
    let badBulk = try await unfilled(started)
    var single: [String: [Double]] = ["plain": [], "triggers": []]
    for round in 0..<(rounds + 1) {
        for (label, c) in (round % 2 == 0 ? [("plain", plain), ("triggers", started)] : [("triggers", started), ("plain", plain)]) {
            let t = now()
            for i in 0..<insertCount {
                _ = try await c.query("INSERT INTO users (name) VALUES (\("Insert\(round)_\(i) Person\(i)"))", logger: logger).collect()
            }
            single[label]!.append(secondsSince(t) / Double(insertCount) * 1e6)
        }
    }
    let ip = median(single["plain"]!), it = median(single["triggers"]!)
    row("(2) single-row INSERT, one connection, plain / triggers (µs each, median of \(rounds + 1) × \(insertCount))", "\(fmt(ip, 1)) / \(fmt(it, 1)) µs",
        "\(fmt(it / ip))x", "rounds plain \(single["plain"]!.map { fmt($0, 1) }.joined(separator: ", ")); triggers \(single["triggers"]!.map { fmt($0, 1) }.joined(separator: ", ")); \(badBulk) + \(try await unfilled(started) - badBulk) rows wrong after the bulk update / inserts",
        "≤ 1.5x — \(it / ip <= 1.5 ? "met" : "missed")")
    try await plain.close().get()
    try await started.close().get()
    drop(dbs.plain)
    drop(dbs.started)
}

// MARK: (3b) a concurrent writer during start

struct Write: Sendable {
    var began: UInt64
    var ms: Double
    var statement: String
}

/// Single-row old-shape writes in a loop on their own connection (an INSERT, then an UPDATE of a random existing
/// row, a 2 ms pause after each) until `stop`. The session asks the server to log its lock waits longer than
/// 10 ms and its statements slower than 20 ms there (the benchmark's user is the cluster's superuser).
func writer(_ database: String, rows: Int, stop: Locked<Bool>) async throws -> [Write] {
    let c = try await connect(database, options: "-c application_name=bench_writer -c log_lock_waits=on -c deadlock_timeout=10ms -c log_min_duration_statement=20 -c log_min_messages=log")
    var out: [Write] = []
    var i = 0
    while !stop.with({ $0 }) {
        let t = now()
        let statement: String
        if i % 2 == 0 {
            statement = "INSERT"
            _ = try await c.query("INSERT INTO users (name) VALUES (\("Writer\(i) Person\(i)"))", logger: logger).collect()
        } else {
            let id = Int.random(in: 1...rows)
            statement = "UPDATE id \(id)"
            _ = try await c.query("UPDATE users SET name = \("Updated\(i) Person\(i)") WHERE id = \(id)", logger: logger).collect()
        }
        out.append(Write(began: t, ms: secondsSince(t) * 1000, statement: statement))
        i += 1
        try await Task.sleep(nanoseconds: 2_000_000)
    }
    try await c.close().get()
    return out
}

/// The cluster logs checkpoints and autovacuum runs (for the writer part only).
func serverLogsBackground() throws {
    for sql in ["ALTER SYSTEM SET log_min_messages = 'log'", "ALTER SYSTEM SET log_checkpoints = on",
                "ALTER SYSTEM SET log_autovacuum_min_duration = 0", "SELECT pg_reload_conf()"] {
        try cluster.psql("postgres", sql)
    }
}

/// The server log's entries (a line and its DETAIL/CONTEXT/STATEMENT lines) written between `from` and `to`
/// (uptime ns, mapped to the log's wall-clock timestamps through `wall`, the Date at uptime `at`).
func serverLog(from: UInt64, to: UInt64, wall: Date, at: UInt64, offset: Int) -> [(UInt64, String)] {
    guard let handle = FileHandle(forReadingAtPath: cluster.folder + "/server.log") else { return [] }
    handle.seek(toFileOffset: UInt64(offset))
    let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS zzz"
    var out: [(UInt64, String)] = []
    for line in text.split(separator: "\n") {
        // "2026-12-02 01:23:45.678 UTC [123] LOG:  ..."
        let parts = line.split(separator: " ", maxSplits: 3)
        if parts.count == 4, let d = f.date(from: "\(parts[0]) \(parts[1]) \(parts[2])") {
            let ns = Int64(at) + Int64(d.timeIntervalSince(wall) * 1e9)
            out.append((UInt64(max(0, ns)), String(parts[3])))
        } else if !out.isEmpty {
            out[out.count - 1].1 += " | " + line.trimmingCharacters(in: .whitespaces)
        }
    }
    return out.filter { $0.0 >= from && $0.0 <= to }
}

func serverLogSize() -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: cluster.folder + "/server.log"))?[.size] as? NSNumber)?.intValue ?? 0
}

/// Milliseconds of `t` after `origin`, signed, as "+1234.5".
func rel(_ t: UInt64, _ origin: UInt64) -> String { String(format: "%+.1f", (Double(t) - Double(origin)) / 1e6) }

/// Where the slowest writes fell: each with the engine's phases it overlapped (or the last one before it) and the
/// server's log entries from its beginning to its end.
func placeSlowWrites(_ label: String, _ writes: [Write], origin: UInt64, events: [Event], server: [(UInt64, String)]) {
    let phases = events.filter { $0.metadata["phase"] != nil }
    print("\(label): the \(slowest) slowest writes (ms from the beginning of `start`)")
    for w in writes.sorted(by: { $0.ms > $1.ms }).prefix(slowest) {
        let end = w.began + UInt64(w.ms * 1e6)
        let overlapping = phases.filter { $0.began < end && $0.at > w.began }
        var line = "  write \(rel(w.began, origin))…\(rel(end, origin)): \(fmt(w.ms)) ms, \(w.statement)"
        if phases.isEmpty {
        } else if overlapping.isEmpty {
            if let before = phases.last(where: { $0.at <= w.began }) {
                line += "; in no phase; the last one before it: \(describe(before, origin))"
            } else {
                line += "; before the engine's first phase"
            }
            if let after = phases.first(where: { $0.began >= end }) { line += "; the next: \(describe(after, origin))" }
        } else {
            line += "; during " + overlapping.map { describe($0, origin) }.joined(separator: "; ")
        }
        print(line)
        for (t, text) in server where t + 50_000_000 >= w.began && t <= end + 50_000_000 {
            print("      server \(rel(t, origin)): \(text.prefix(400))")
        }
    }
}

func describe(_ e: Event, _ origin: UInt64) -> String {
    let extra = ["table", "size", "rows", "attempt"].compactMap { k in e.metadata[k].map { "\(k) \($0)" } }.joined(separator: ", ")
    return "\(e.metadata["phase"] ?? e.message) \(rel(e.began, origin))…\(rel(e.at, origin)) (\(e.metadata["ms"] ?? "?") ms\(extra.isEmpty ? "" : "; " + extra))"
}

/// The backfill batches among `events`: how many, their ms p50 / p99 / max and their sizes.
func batchSummary(_ events: [Event]) -> String {
    let batches = events.filter { $0.metadata["phase"] == "backfill batch" }
    let ms = batches.compactMap { $0.metadata["ms"].flatMap(Double.init) }
    let sizes = batches.compactMap { $0.metadata["size"].flatMap(Int.init) }
    let gaveWay = events.filter { $0.metadata["phase"] == "backfill batch (lock wait)" }.count
    return "\(batches.count) batches, ms p50 \(fmt(median(ms))) / p99 \(fmt(percentile(ms, 0.99))) / max \(fmt(ms.max() ?? .nan)), size p50 \(sizes.isEmpty ? 0 : Int(median(sizes.map(Double.init)))) / max \(sizes.max() ?? 0), \(gaveWay) gave way"
}

/// The engine's phases of one `start`, batches summarized.
func printPhases(_ events: [Event], origin: UInt64) {
    print("(3) start's phases (engine debug log; ms from the beginning of `start`):")
    let batches = events.filter { $0.metadata["phase"] == "backfill batch" }
    var batchSummaryPrinted = false
    for e in events where e.metadata["phase"] != nil || e.message.hasPrefix("start:") {
        if e.metadata["phase"] == "backfill batch" {
            guard !batchSummaryPrinted, let first = batches.first, let last = batches.last else { continue }
            batchSummaryPrinted = true
            let ms = batches.compactMap { $0.metadata["ms"].flatMap(Double.init) }
            let sizes = batches.compactMap { $0.metadata["size"].flatMap(Int.init) }
            print("  backfill: \(batches.count) batches \(rel(first.began, origin))…\(rel(last.at, origin)); batch ms p50 \(fmt(median(ms))) / p99 \(fmt(percentile(ms, 0.99))) / max \(fmt(ms.max() ?? .nan)); size min \(sizes.min() ?? 0) / max \(sizes.max() ?? 0); \(ms.filter { $0 > 50 }.count) batches over 50 ms")
            continue
        }
        print("  \(e.metadata["phase"] == nil ? e.message + " at " + rel(e.at, origin) : describe(e, origin))")
    }
}

if writerSize > 0 {
    let seedDB = try await seed(writerSize)
    let startDB = try copy(seedDB, "writer\(writerSize)")
    let controlDB = try copy(seedDB, "control\(writerSize)")
    drop(seedDB)
    try serverLogsBackground()
    let loadBefore = loadNow()
    // With the migration: only writes that began while the start call ran count.
    let stop = Locked(false)
    let logOffset = serverLogSize()
    let w = Task { try await writer(startDB, rows: writerSize, stop: stop) }
    try await Task.sleep(nanoseconds: 200_000_000)
    timeline.begin()
    let wall = Date(), wallAt = now()
    let s = try await timedStart(startDB)
    let events = timeline.end()
    try await Task.sleep(nanoseconds: 100_000_000)
    stop.with { $0 = true }
    let writes = try await w.value.filter { $0.began >= s.began && $0.began < s.ended }
    let during = writes.map(\.ms)
    let server = serverLog(from: s.began, to: s.ended + 100_000_000, wall: wall, at: wallAt, offset: logOffset)
    let c = try await connect(startDB)
    let bad = try await unfilled(c)
    try await c.close().get()
    // Control: the same writer for as long on a copy with no migration.
    let stop2 = Locked(false)
    let controlOffset = serverLogSize()
    let w2 = Task { try await writer(controlDB, rows: writerSize, stop: stop2) }
    let wall2 = Date(), wall2At = now()
    try await Task.sleep(nanoseconds: s.ended - s.began + 200_000_000)
    stop2.with { $0 = true }
    let controlWrites = Array(try await w2.value.dropFirst(10))
    let control = controlWrites.map(\.ms)
    let controlServer = serverLog(from: controlWrites.first?.began ?? 0, to: now(), wall: wall2, at: wall2At, offset: controlOffset)
    print("")
    printPhases(events, origin: s.began)
    placeSlowWrites("(3) with start", writes, origin: s.began, events: events, server: server)
    let waits = server.filter { $0.1.contains("still waiting") || $0.1.contains("acquired") }.count
    let slowStatements = server.filter { $0.1.contains("duration:") }.count
    print("(3) server log during start: \(server.count) entries (\(waits) lock-wait entries of the writer, \(slowStatements) of its statements over 20 ms on the server); checkpoints and autovacuum:")
    for (t, text) in server where text.contains("checkpoint") || text.contains("automatic") {
        print("  \(rel(t, s.began)): \(text.prefix(300))")
    }
    print("(3) writes slower than 20 ms: \(during.filter { $0 > 20 }.count) with start, \(control.filter { $0 > 20 }.count) in the control")
    placeSlowWrites("(3) control, no migration", controlWrites, origin: controlWrites.first?.began ?? 0, events: [], server: controlServer)
    for (t, text) in controlServer where text.contains("checkpoint") || text.contains("automatic") {
        print("  control server \(rel(t, controlWrites.first?.began ?? 0)): \(text.prefix(300))")
    }
    print("")
    row("(3) start with a concurrent writer, \(writerSize) rows", "\(fmt(s.start)) s", "\(during.count) writes",
        "backfill \(fmt(s.backfill)) s (\(rate(writerSize, s.backfill)) rows/s); \(bad) rows wrong after; load \(loadBefore)", "")
    row("(3) writer latency during start: p50 / p99 / max", "\(fmt(median(during))) / \(fmt(percentile(during, 0.99))) / \(fmt(during.max() ?? .nan)) ms",
        "max \(fmt(during.max() ?? .nan)) ms", "control (no migration, \(control.count) writes): p50 \(fmt(median(control))) / p99 \(fmt(percentile(control, 0.99))) / max \(fmt(control.max() ?? .nan)) ms; load after \(loadNow())",
        "max ≤ 50 ms — \((during.max() ?? .infinity) <= 50 ? "met" : "missed")")
    drop(startDB)
    drop(controlDB)
}

print("")
print("| measure | time | figure | notes | goal |")
print("|---|---|---|---|---|")
for r in table { print("| " + r.joined(separator: " | ") + " |") }
