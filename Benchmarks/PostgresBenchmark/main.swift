// PostgreSQL schema engine benchmark: the split-name migration on users(id serial pk, name text) filled with
// generate_series, on a private PostgreSQL cluster (TestSupport's PostgresCluster), and a printed table.
//
//   TEAL_BENCH_SIZES=100000,1000000,10000000   table sizes (default); for each: (1) the backfill rate of `start`,
//                                              (3) `start` ÷ one ALTER TABLE ADD COLUMN + UPDATE on a copy
//   TEAL_BENCH_WRITER_SIZE=1000000             size of the run with a concurrent writer during `start` (3b); 0 skips
//   TEAL_BENCH_TRIGGER_SIZE=100000             size of the trigger-cost runs (2); 0 skips
//   TEAL_BENCH_INSERTS=5000                    single-row inserts per round in (2)
//   TEAL_BENCH_LOG=1                           the engine's log on stderr
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
let rounds = 3

LoggingSystem.bootstrap { label in
    var h = StreamLogHandler.standardError(label: label)
    h.logLevel = env["TEAL_BENCH_LOG"] == "1" ? .info : .warning
    return h
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

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
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

/// A seeded database of `rows` rows, vacuumed and frozen; copies of it are made with `copy`.
func seed(_ rows: Int) async throws -> String {
    let name = try cluster.createDatabase("seed\(rows)")
    let c = try await connect(name)
    try await c.run("CREATE TABLE users (id serial PRIMARY KEY, name text)")
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
    let total = secondsSince(t)
    let m = marks.with { $0 }
    let c = try await connect(database)
    let bad = try await unfilled(c)
    try await c.close().get()
    return StartRun(start: total, backfill: Double(m.last - (m.first ?? m.last)) / 1e9, rows: m.done, unfilled: bad)
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
    let plainDB = try copy(seedDB, "plain\(n)")
    let startDB = try copy(seedDB, "start\(n)")
    let loadBefore = loadNow()
    let base = try await baseline(plainDB)
    let s = try await timedStart(startDB)
    row("(1) backfill \(n) rows", "\(fmt(s.backfill)) s", "\(rate(n, s.backfill)) rows/s", "start \(fmt(s.start)) s (\(rate(n, s.start)) rows/s overall); \(s.rows) reported, \(s.unfilled) wrong; load \(loadBefore)", "≥ 100000 rows/s — \(Double(n) / s.backfill >= 100_000 ? "met" : "missed")")
    row("(3) start ÷ ALTER + UPDATE, \(n) rows", "\(fmt(s.start)) / \(fmt(base)) s", "\(fmt(s.start / base))x", "", "≤ 1.5x — \(s.start / base <= 1.5 ? "met" : "missed")")
    if n == triggerSize {
        triggerDatabases = (plainDB, startDB)
    } else {
        drop(plainDB)
        drop(startDB)
    }
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
    for statement in ["UPDATE users SET name = name || ''", "UPDATE users SET name = 'X' || name"] {
        var bulk: [String: [Double]] = ["plain": [], "triggers": []]
        for round in 0..<rounds {
            for (label, c) in (round % 2 == 0 ? [("plain", plain), ("triggers", started)] : [("triggers", started), ("plain", plain)]) {
                try await c.run("VACUUM ANALYZE users")
                try await c.run("CHECKPOINT")
                bulk[label]!.append(try await c.timed(statement))
            }
        }
        let bp = median(bulk["plain"]!), bt = median(bulk["triggers"]!)
        row("(2) `\(statement)`, \(triggerSize) rows, plain / triggers (median of \(rounds))", "\(fmt(bp, 3)) / \(fmt(bt, 3)) s",
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

/// Single-row old-shape writes in a loop on their own connection (an INSERT, then an UPDATE of a random existing
/// row, a 2 ms pause after each) until `stop`; returns (began at, latency) of each.
func writer(_ database: String, rows: Int, stop: Locked<Bool>) async throws -> [(UInt64, Double)] {
    let c = try await connect(database)
    var out: [(UInt64, Double)] = []
    var i = 0
    while !stop.with({ $0 }) {
        let t = now()
        if i % 2 == 0 {
            _ = try await c.query("INSERT INTO users (name) VALUES (\("Writer\(i) Person\(i)"))", logger: logger).collect()
        } else {
            let id = Int.random(in: 1...rows)
            _ = try await c.query("UPDATE users SET name = \("Updated\(i) Person\(i)") WHERE id = \(id)", logger: logger).collect()
        }
        out.append((t, secondsSince(t) * 1000))
        i += 1
        try await Task.sleep(nanoseconds: 2_000_000)
    }
    try await c.close().get()
    return out
}

if writerSize > 0 {
    let seedDB = try await seed(writerSize)
    let startDB = try copy(seedDB, "writer\(writerSize)")
    let controlDB = try copy(seedDB, "control\(writerSize)")
    drop(seedDB)
    let loadBefore = loadNow()
    // With the migration: only writes that began while start ran count.
    let stop = Locked(false)
    let w = Task { try await writer(startDB, rows: writerSize, stop: stop) }
    try await Task.sleep(nanoseconds: 200_000_000)
    let t0 = now()
    let s = try await timedStart(startDB)
    let t1 = now()
    try await Task.sleep(nanoseconds: 100_000_000)
    stop.with { $0 = true }
    let during = try await w.value.filter { $0.0 >= t0 && $0.0 < t1 }.map(\.1)
    let c = try await connect(startDB)
    let bad = try await unfilled(c)
    try await c.close().get()
    // Control: the same writer for as long on a copy with no migration.
    let stop2 = Locked(false)
    let w2 = Task { try await writer(controlDB, rows: writerSize, stop: stop2) }
    try await Task.sleep(nanoseconds: UInt64(Double(t1 - t0)) + 200_000_000)
    stop2.with { $0 = true }
    let control = try await w2.value.dropFirst(10).map(\.1)
    row("(3) start with a concurrent writer, \(writerSize) rows", "\(fmt(s.start)) s", "\(during.count) writes",
        "backfill \(fmt(s.backfill)) s (\(rate(writerSize, s.backfill)) rows/s); \(bad) rows wrong after; load \(loadBefore)", "")
    row("(3) writer latency during start: p50 / p99 / max", "\(fmt(median(during))) / \(fmt(percentile(during, 0.99))) / \(fmt(during.max() ?? .nan)) ms",
        "max \(fmt(during.max() ?? .nan)) ms", "control (no migration, \(control.count) writes): p99 \(fmt(percentile(control, 0.99))) / max \(fmt(control.max() ?? .nan)) ms",
        "max ≤ 50 ms — \((during.max() ?? .infinity) <= 50 ? "met" : "missed")")
    drop(startDB)
    drop(controlDB)
}

print("")
print("| measure | time | figure | notes | goal |")
print("|---|---|---|---|---|")
for r in table { print("| " + r.joined(separator: " | ") + " |") }
