// Schema engine benchmark: split a name column on N rows (default 1,000,000; `SchemaBenchmark 100000` or
// TEAL_BENCH_ROWS for a quick run) and print a table. (a) is run TEAL_BENCH_REPEAT times (default 3) on fresh
// copies, alternating UPDATE and start, and reports medians; the ratio is the median of each round's ratio, so
// that a change of the machine's load between rounds does not pair a slow run with a fast one.
import Foundation
import GRDB
import Logging
import Manifest
import Schema
import GRDBSQLite

let rows = CommandLine.arguments.dropFirst().first.flatMap(Int.init)
    ?? ProcessInfo.processInfo.environment["TEAL_BENCH_ROWS"].flatMap(Int.init) ?? 1_000_000
let inserts = min(100_000, max(1000, rows / 10))
let work = FileManager.default.temporaryDirectory.appendingPathComponent("teal-schema-bench-\(getpid())")
try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: work) }

let up1 = "CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END"
let up2 = "CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END"
let split = Migration(name: "0002_split_name", number: 2, checksum: "bench", operations: [
    .addColumn(AddColumn(table: "users", column: Manifest.ColumnDefinition(name: "first_name", type: "text", nullable: true), up: up1)),
    .addColumn(AddColumn(table: "users", column: Manifest.ColumnDefinition(name: "last_name", type: "text", nullable: true), up: up2)),
    .dropColumn(DropColumn(table: "users", column: "name", down: "trim(first_name || ' ' || last_name)")),
])

func connection(_ path: String) throws -> DatabaseQueue {
    var config = Configuration()
    config.busyMode = .timeout(10)
    config.foreignKeysEnabled = false
    config.prepareDatabase { db in
        _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
        try db.execute(sql: "PRAGMA synchronous = NORMAL")
    }
    return try DatabaseQueue(path: path, configuration: config)
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// `users` with `count` rows, checkpointed: the database every copy starts from.
func seed(_ path: String, rows count: Int) throws {
    let db = try connection(path)
    try db.write { db in
        try db.execute(sql: "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT)")
        try db.execute(sql: """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO users (name, email) SELECT 'First' || i || ' Last' || i, 'user' || i || '@example.com' FROM n
            """, arguments: [count])
    }
    try db.writeWithoutTransaction { _ = try $0.checkpoint(.truncate) }
}

let base = work.appendingPathComponent("base.db").path
try seed(base, rows: rows)

func copy(_ name: String, from source: String = base) throws -> String {
    let path = work.appendingPathComponent(name).path
    try? FileManager.default.removeItem(atPath: path)
    try FileManager.default.copyItem(atPath: source, toPath: path)
    // On disk before use, like the database it stands for: otherwise the first fsync of a checkpoint flushes
    // the whole fresh copy, stalling every writer of the file system for as long.
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try handle.synchronize()
    try handle.close()
    return path
}

let quiet: Logger = {
    var logger = Logger(label: "bench")
    logger.logLevel = ProcessInfo.processInfo.environment["TEAL_BENCH_LOG"] == nil ? .warning : .info
    return logger
}()

let repeats = max(1, ProcessInfo.processInfo.environment["TEAL_BENCH_REPEAT"].flatMap(Int.init) ?? 3)
func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.isEmpty ? 0 : s[s.count / 2] }
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

// (d) a revert while the backfill runs, on its own database of TEAL_BENCH_REVERT_ROWS rows (default 2,000,000):
// the start is asked to stop when about 40% of the rows are done (what the agent does when a newer commit
// arrives), then rolled back, with the writer of (b) inserting every 5 ms throughout. Run twice: as the engine
// does it (the added columns leave the declaration, their values are cleared in batches), and with a trigger
// on the table, which makes the rollback use SQLite's DROP COLUMN (one transaction rewriting the table), the
// way every rollback went before.
struct RevertRun {
    var stopToInterrupted: Double
    var rollbackCommit: Double
    var clearing: Double
    var doneAtStop: Int
    var total: Int
    var writerDuring: [Double]
    var writerWorst: Double
    var writerBefore: [Double]
    var errors: Int
    var rowsKept: Bool
    var schemaAsBefore: Bool
}
let revertRows = ProcessInfo.processInfo.environment["TEAL_BENCH_REVERT_ROWS"].flatMap(Int.init) ?? 2_000_000
let revertBase = work.appendingPathComponent("revert-base.db").path
func revertRun(dropColumn: Bool) throws -> RevertRun {
    if !FileManager.default.fileExists(atPath: revertBase) { try seed(revertBase, rows: revertRows) }
    let path = try copy("revert-\(dropColumn).db", from: revertBase)
    defer { try? FileManager.default.removeItem(atPath: path) }
    if dropColumn {
        try connection(path).write { try $0.execute(sql: "CREATE TRIGGER bench_keep AFTER DELETE ON users BEGIN SELECT 1; END") }
    }
    let schemaBefore = try connection(path).read { try String.fetchAll($0, sql: "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE '\\_teal\\_%' ESCAPE '\\' ORDER BY name") }
    let log = LatencyLog()
    let stop = Flag()
    let window = Window()
    let before = LatencyLog()
    let backfilling = Window()
    startWriter(path, every: 0.005, logging: [(window, log), (backfilling, before)], until: stop)
    Thread.sleep(forTimeInterval: 0.1)
    let engine = try SchemaEngine(path: path, logger: quiet)
    let progress = Progress()
    let asked = Flag()
    backfilling.open(now())
    var interrupted = false
    do {
        try engine.start(split, progress: { done, total in
            progress.set(done, total)
        }, shouldStop: {
            let (done, total) = progress.get()
            if !asked.isSet, total > 0, done * 10 >= total * 4 {
                let stopAt = now()
                backfilling.close(stopAt)
                window.open(stopAt)
                asked.set()
            }
            return asked.isSet
        })
    } catch let error as SchemaError where error.isInterruption {
        interrupted = true
    }
    precondition(interrupted, "the start was not interrupted")
    let interruptedAt = now()
    let stopAt = window.start
    var committedAt = 0.0
    try engine.rollback(split.name) { committedAt = now() }
    let clearedAt = now()
    window.close(clearedAt)
    stop.set()
    stop.waitFinished()
    let db = try connection(path)
    let (count, schemaAfter) = try db.read { db in
        (try Int.fetchOne(db, sql: "SELECT count(*) FROM users WHERE name NOT LIKE 'Writer %'") ?? -1,
         try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE '\\_teal\\_%' ESCAPE '\\' ORDER BY name"))
    }
    let (done, total) = progress.get()
    return RevertRun(stopToInterrupted: interruptedAt - stopAt, rollbackCommit: committedAt - interruptedAt, clearing: clearedAt - committedAt,
                     doneAtStop: done, total: total, writerDuring: log.values.sorted(), writerWorst: log.values.max() ?? 0,
                     writerBefore: before.values.sorted(), errors: log.errors, rowsKept: count == revertRows, schemaAsBefore: schemaAfter == schemaBefore)
}
if ProcessInfo.processInfo.environment["TEAL_BENCH_PARTS"].map({ $0.split(separator: ",").contains("d") }) ?? true {
    let batched = try revertRun(dropColumn: false)
    let rewrite = try revertRun(dropColumn: true)
    func pct(_ xs: [Double], _ p: Double) -> Double { xs.isEmpty ? 0 : xs[min(xs.count - 1, Int(Double(xs.count) * p))] }
    print("(d) revert mid-backfill on \(revertRows) rows; stop asked at 40% of the backfill, writer every 5 ms")
    print("| measure | engine (declaration edit + batched clearing) | DROP COLUMN (a trigger on the table) | goal |")
    print("|---|---|---|---|")
    print("| rows done when the stop was asked | \(batched.doneAtStop) of \(batched.total) | \(rewrite.doneAtStop) of \(rewrite.total) | |")
    print("| stop asked -> start returned | \(f(batched.stopToInterrupted * 1000, 1)) ms | \(f(rewrite.stopToInterrupted * 1000, 1)) ms | |")
    print("| rollback transaction (-> only the old shape declared) | \(f(batched.rollbackCommit * 1000, 1)) ms | \(f(rewrite.rollbackCommit * 1000, 1)) ms | |")
    print("| stop asked -> rolled back | \(f((batched.stopToInterrupted + batched.rollbackCommit) * 1000, 1)) ms | \(f((rewrite.stopToInterrupted + rewrite.rollbackCommit) * 1000, 1)) ms | <= 1 s |")
    print("| after the commit: NOT NULL re-declared (rows scanned outside the lock), dropped values cleared in batches | \(f(batched.clearing, 2)) s | \(f(rewrite.clearing, 2)) s | |")
    print("| writer during stop + rollback + clearing: inserts / failed | \(batched.writerDuring.count) / \(batched.errors) | \(rewrite.writerDuring.count) / \(rewrite.errors) | |")
    print("| writer p50 / p99 / max | \(f(pct(batched.writerDuring, 0.5))) / \(f(pct(batched.writerDuring, 0.99))) / \(f(batched.writerWorst)) ms | \(f(pct(rewrite.writerDuring, 0.5))) / \(f(pct(rewrite.writerDuring, 0.99))) / \(f(rewrite.writerWorst)) ms | max <= 50 ms |")
    print("| writer during the backfill before the stop: p99 / max | \(f(pct(batched.writerBefore, 0.99))) / \(f(batched.writerBefore.last ?? 0)) ms | \(f(pct(rewrite.writerBefore, 0.99))) / \(f(rewrite.writerBefore.last ?? 0)) ms | |")
    print("| every row kept, sqlite_schema as before | \(batched.rowsKept && batched.schemaAsBefore) | \(rewrite.rowsKept && rewrite.schemaAsBefore) | |")
    if ProcessInfo.processInfo.environment["TEAL_BENCH_PARTS"] == "d" { exit(0) }
}

// (a) start vs one UPDATE computing the same values, on identical copies of the same database.
var baselines: [Double] = []
var starts: [Double] = []
var startPath = ""
for round in 0..<repeats {
    let baselinePath = try copy("baseline-\(round).db")
    baselines.append(try seconds {
        try connection(baselinePath).write { db in
            try db.execute(sql: "ALTER TABLE users ADD COLUMN first_name text")
            try db.execute(sql: "ALTER TABLE users ADD COLUMN last_name text")
            try db.execute(sql: "UPDATE users SET first_name = \(up1), last_name = \(up2)")
        }
    })
    try FileManager.default.removeItem(atPath: baselinePath)
    startPath = try copy("start-\(round).db")
    let path = startPath
    starts.append(try seconds { try SchemaEngine(path: path, logger: quiet).start(split) })
    if round < repeats - 1 { try FileManager.default.removeItem(atPath: startPath) }
}
let sameValues = try connection(startPath).read { db in
    try Int.fetchOne(db, sql: "SELECT count(*) FROM users WHERE first_name IS NOT (\(up1)) OR last_name IS NOT (\(up2))") ?? -1
}
let baseline = median(baselines)
let startTime = median(starts)

// (b) a writer inserting one row every 5 ms (old shape, its own connection with a 10 s busy timeout, as an
// app would have), timed only for inserts that began while `start` ran.
struct WriterRun {
    var latencies: [Double]
    /// The three longest inserts: (ms after start began, latency ms).
    var worst: [(Double, Double)]
    var errors: Int
    var startTime: Double
    var unfilled: Int
}
/// `migrate: false` is the control: the same writer for `duration` with nothing else running.
func writerRun(every interval: Double, migrate: Bool = true, duration: Double = 0) throws -> WriterRun {
    let path = try copy("writer-\(interval).db")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let log = LatencyLog()
    let stop = Flag()
    let window = Window()
    startWriter(path, every: interval, logging: [(window, log)], until: stop)
    Thread.sleep(forTimeInterval: 0.1)
    window.open(now())
    let time = try seconds {
        if migrate {
            try SchemaEngine(path: path, logger: quiet).start(split)
        } else {
            Thread.sleep(forTimeInterval: duration)
        }
    }
    window.close(now())
    stop.set()
    stop.waitFinished()
    let unfilled = migrate ? try connection(path).read {
        try Int.fetchOne($0, sql: "SELECT count(*) FROM users WHERE first_name IS NULL OR last_name IS NULL OR name IS NULL") ?? -1
    } : 0
    return WriterRun(latencies: log.values.sorted(), worst: Array(log.timed.sorted { $0.1 > $1.1 }.prefix(3)),
                     errors: log.errors, startTime: time, unfilled: unfilled)
}
let steady = try writerRun(every: 0.005)
let control = try writerRun(every: 0.005, migrate: false, duration: steady.startTime)
let sporadic = try writerRun(every: 1.5)
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

// (c) single-row old-shape inserts without and with the expand triggers, in alternating rounds so that the
// machine's load affects both alike. "Prepared per insert" is `Database.execute(sql:arguments:)`, which
// compiles the statement (and with it the trigger programs) every time; "cached" reuses one prepared statement,
// as GRDB records, Python's sqlite3 and most drivers' statement caches do.
func insertRound(_ db: DatabaseQueue, from: Int, count: Int, cached: Bool) throws -> Double {
    try seconds {
        for i in from..<(from + count) {
            try db.writeWithoutTransaction { db in
                let sql = "INSERT INTO users (name, email) VALUES (?, ?)"
                let arguments: StatementArguments = ["Bench \(i)", "b\(i)@example.com"]
                if cached {
                    try db.cachedStatement(sql: sql).execute(arguments: arguments)
                } else {
                    try db.execute(sql: sql, arguments: arguments)
                }
            }
        }
    }
}
let plainDB = try connection(try copy("plain.db"))
let triggeredDB = try connection(startPath)
let rounds = 10
let perRound = inserts / rounds
var plain = 0.0, triggered = 0.0, plainCached = 0.0, triggeredCached = 0.0
for r in 0..<rounds {
    plain += try insertRound(plainDB, from: r * perRound, count: perRound, cached: false)
    triggered += try insertRound(triggeredDB, from: r * perRound, count: perRound, cached: false)
    triggeredCached += try insertRound(triggeredDB, from: inserts + r * perRound, count: perRound, cached: true)
    plainCached += try insertRound(plainDB, from: inserts + r * perRound, count: perRound, cached: true)
}
let done = rounds * perRound
let triggeredRows = try triggeredDB.read { db in
    try Int.fetchOne(db, sql: "SELECT count(*) FROM users WHERE name LIKE 'Bench %' AND first_name = 'Bench' AND last_name = substr(name, 7)") ?? -1
}

// (c) as an application sees it, without GRDB (whose authorizer runs Swift code for every reference while a
// statement compiles): SQLite's C API on its own connection, and Python's sqlite3 module in a child process, each
// prepared per insert and cached, in alternating rounds on the same two databases.
func cInsertRound(_ path: String, from: Int, count: Int, cached: Bool) throws -> Double {
    var handle: OpaquePointer?
    guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let db = handle else { throw BenchError("cannot open \(path)") }
    defer { sqlite3_close_v2(db) }
    sqlite3_busy_timeout(db, 10_000)
    // As the engine's and the GRDB writers' connections: WAL (the file's mode) with synchronous=NORMAL.
    sqlite3_exec(db, "PRAGMA synchronous = NORMAL", nil, nil, nil)
    let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    let sql = "INSERT INTO users (name, email) VALUES (?, ?)"
    var kept: OpaquePointer?
    defer { sqlite3_finalize(kept) }
    return try seconds {
        for i in from..<(from + count) {
            var statement = kept
            if statement == nil {
                guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else { throw BenchError(String(cString: sqlite3_errmsg(db))) }
            }
            sqlite3_bind_text(statement, 1, "Bench \(i)", -1, transient)
            sqlite3_bind_text(statement, 2, "b\(i)@example.com", -1, transient)
            guard sqlite3_step(statement) == SQLITE_DONE else { throw BenchError(String(cString: sqlite3_errmsg(db))) }
            if cached {
                sqlite3_reset(statement)
                kept = statement
            } else {
                sqlite3_finalize(statement)
            }
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Seconds Python's sqlite3 takes for `count` inserts; `cached_statements=0` compiles every one.
func pythonInsertRound(_ path: String, from: Int, count: Int, cached: Bool) throws -> Double {
    let script = """
        import sqlite3, sys, time
        path, first, count, cached = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
        db = sqlite3.connect(path, timeout=10, isolation_level=None, cached_statements=128 if cached else 0)
        db.execute("PRAGMA synchronous = NORMAL")
        t = time.perf_counter()
        for i in range(first, first + count):
            db.execute("INSERT INTO users (name, email) VALUES (?, ?)", ("Bench %d" % i, "b%d@example.com" % i))
        print(time.perf_counter() - t)
        """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, path, "\(from)", "\(count)", cached ? "1" : "0"]
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    process.waitUntilExit()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard process.terminationStatus == 0, let value = Double(text) else { throw BenchError("python3 failed: \(text)") }
    return value
}

let plainPath = plainDB.path
var cPlain = 0.0, cTriggered = 0.0, cPlainCached = 0.0, cTriggeredCached = 0.0

// (c) floors, C API only: the same old-shape inserts on copies of the unmigrated table given the two new columns and
// hand-written triggers with the same `up`/`down` expressions. "One-way" is the fill alone (what any design pays
// at least); "two-way" adds one bare update trigger each way, the smallest set that carries updates in both
// shapes. Neither keeps values that do not round-trip (an old-shape 'Ada  Byron ' gets its name rewritten) nor
// guards NOT NULL, so they bound from below what a correct set can cost, and are not one.
let floorDown = "trim(first_name || ' ' || last_name)"
let floorFill = "CREATE TRIGGER floor_ins AFTER INSERT ON users WHEN NEW.first_name IS NULL BEGIN UPDATE users SET first_name = (\(up1)), last_name = (\(up2)) WHERE rowid = NEW.rowid; END"
let floorTriggers = [
    floorFill,
    "CREATE TRIGGER floor_new AFTER UPDATE OF first_name, last_name ON users WHEN NEW.first_name IS NOT OLD.first_name OR NEW.last_name IS NOT OLD.last_name BEGIN UPDATE users SET name = \(floorDown) WHERE rowid = NEW.rowid AND name IS NOT \(floorDown); END",
    "CREATE TRIGGER floor_old AFTER UPDATE OF name ON users WHEN NEW.name IS NOT OLD.name BEGIN UPDATE users SET first_name = (\(up1)), last_name = (\(up2)) WHERE rowid = NEW.rowid; END",
]
func floorCopy(_ name: String, _ triggers: [String]) throws -> String {
    let path = try copy(name)
    try connection(path).write { db in
        try db.execute(sql: "ALTER TABLE users ADD COLUMN first_name TEXT")
        try db.execute(sql: "ALTER TABLE users ADD COLUMN last_name TEXT")
        for sql in triggers { try db.execute(sql: sql) }
    }
    return path
}
let oneWayPath = try floorCopy("floor-one-way.db", [floorFill])
let twoWayPath = try floorCopy("floor-two-way.db", floorTriggers)
var oneWay = 0.0, oneWayCached = 0.0, twoWay = 0.0, twoWayCached = 0.0
var pyPlain = 0.0, pyTriggered = 0.0, pyPlainCached = 0.0, pyTriggeredCached = 0.0
for r in 0..<rounds {
    let at = 2 * inserts + r * perRound
    cPlain += try cInsertRound(plainPath, from: at, count: perRound, cached: false)
    cTriggered += try cInsertRound(startPath, from: at, count: perRound, cached: false)
    cTriggeredCached += try cInsertRound(startPath, from: inserts + at, count: perRound, cached: true)
    cPlainCached += try cInsertRound(plainPath, from: inserts + at, count: perRound, cached: true)
    oneWay += try cInsertRound(oneWayPath, from: at, count: perRound, cached: false)
    twoWay += try cInsertRound(twoWayPath, from: at, count: perRound, cached: false)
    twoWayCached += try cInsertRound(twoWayPath, from: inserts + at, count: perRound, cached: true)
    oneWayCached += try cInsertRound(oneWayPath, from: inserts + at, count: perRound, cached: true)
    let py = 4 * inserts + r * perRound
    pyPlain += try pythonInsertRound(plainPath, from: py, count: perRound, cached: false)
    pyTriggered += try pythonInsertRound(startPath, from: py, count: perRound, cached: false)
    pyTriggeredCached += try pythonInsertRound(startPath, from: inserts + py, count: perRound, cached: true)
    pyPlainCached += try pythonInsertRound(plainPath, from: inserts + py, count: perRound, cached: true)
}
let splitRows = try triggeredDB.read { db in
    try Int.fetchOne(db, sql: "SELECT count(*) FROM users WHERE name LIKE 'Bench %' AND first_name = 'Bench' AND last_name = substr(name, 7)") ?? -1
}

func f(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }
func us(_ t: Double) -> String { f(t / Double(done) * 1e6, 1) }
print("Schema engine benchmark: split users.name on \(rows) rows (at most 1000 rows a batch), (a) median of \(repeats)")
print("| measure | value | goal |")
print("|---|---|---|")
print("| (a) single UPDATE (ALTER + UPDATE, one transaction) | \(f(baseline)) s (runs: \(baselines.map { f($0) }.joined(separator: ", "))) | |")
print("| (a) `start` (expand + batched backfill) | \(f(startTime)) s (runs: \(starts.map { f($0) }.joined(separator: ", ")); rows differing from the UPDATE's values: \(sameValues)) | |")
let pairedRatios = zip(starts, baselines).map { $0 / $1 }
print("| (a) ratio start / UPDATE, median of the rounds' ratios | \(f(median(pairedRatios)))x (rounds: \(pairedRatios.map { f($0) }.joined(separator: ", "))) | <= 1.25x |")
print("| (b) `start` with a writer every 5 ms | \(f(steady.startTime)) s (\(steady.latencies.count) inserts during it, \(steady.errors) failed, rows left unfilled: \(steady.unfilled)) | |")
print("| (b) writer latency p50 / p99 | \(f(percentile(steady.latencies, 0.5))) / \(f(percentile(steady.latencies, 0.99))) ms | |")
print("| (b) writer latency max | \(f(steady.latencies.last ?? 0)) ms (longest: \(steady.worst.map { "\(f($0.1, 1)) ms at \(f($0.0, 0)) ms" }.joined(separator: ", "))) | <= 20 ms |")
print("| (b) control: same writer, same duration, no migration: p99 / max | \(f(percentile(control.latencies, 0.99))) / \(f(control.latencies.last ?? 0)) ms (longest: \(control.worst.map { "\(f($0.1, 1)) ms" }.joined(separator: ", "))) | |")
print("| (b') writer every 1.5 s (backfill quiet between its inserts): max | \(f(sporadic.latencies.last ?? 0)) ms over \(sporadic.latencies.count) inserts (\(sporadic.errors) failed, unfilled: \(sporadic.unfilled)) | |")
print("| (c) \(done) old-shape inserts prepared per insert, no triggers | \(f(plain)) s (\(us(plain)) us each) | |")
print("| (c) same with the expand triggers | \(f(triggered)) s (\(us(triggered)) us each) | |")
print("| (c) ratio, prepared per insert | \(f(triggered / plain))x | (GRDB; the goal is for the C API and Python) |")
print("| (c) \(done) old-shape inserts with a cached statement, no triggers | \(f(plainCached)) s (\(us(plainCached)) us each) | |")
print("| (c) same with the expand triggers | \(f(triggeredCached)) s (\(us(triggeredCached)) us each; \(triggeredRows) of \(2 * done) rows split) | |")
print("| (c) ratio, cached statement | \(f(triggeredCached / plainCached))x | (GRDB; the goal is for the C API and Python) |")
print("| (c) C API, prepared per insert: plain / triggers | \(us(cPlain)) / \(us(cTriggered)) us | |")
print("| (c) C API ratio, prepared per insert | \(f(cTriggered / cPlain))x | <= 1.5x |")
print("| (c) C API, cached statement: plain / triggers | \(us(cPlainCached)) / \(us(cTriggeredCached)) us | |")
print("| (c) C API ratio, cached statement | \(f(cTriggeredCached / cPlainCached))x | <= 1.2x |")
print("| (c) Python sqlite3, cached_statements=0: plain / triggers | \(us(pyPlain)) / \(us(pyTriggered)) us | |")
print("| (c) Python ratio, prepared per insert | \(f(pyTriggered / pyPlain))x | <= 1.5x |")
print("| (c) Python sqlite3, statement cache: plain / triggers | \(us(pyPlainCached)) / \(us(pyTriggeredCached)) us | |")
print("| (c) Python ratio, cached statement | \(f(pyTriggeredCached / pyPlainCached))x | <= 1.2x |")
print("| (c) rows split by the triggers, all clients | \(splitRows) of \(6 * done) | |")
print("| (c) floor, C API, one-way fill trigger only: prepared / cached | \(us(oneWay)) / \(us(oneWayCached)) us (\(f(oneWay / cPlain))x / \(f(oneWayCached / cPlainCached))x) | |")
print("| (c) floor, C API, minimal two-way set (not round-trip safe, no NOT NULL guard): prepared / cached | \(us(twoWay)) / \(us(twoWayCached)) us (\(f(twoWay / cPlain))x / \(f(twoWayCached / cPlainCached))x) | |")

/// An old-shape writer on its own connection: one insert every `interval` seconds, each timed into the logs whose
/// window it began in, until `stop` is set.
func startWriter(_ path: String, every interval: Double, logging logs: [(Window, LatencyLog)], until stop: Flag) {
    let writer = Thread {
        guard let db = try? connection(path) else { stop.finish(); return }
        var i = 0
        while !stop.isSet {
            let t0 = now()
            let ok = (try? db.write { try $0.execute(sql: "INSERT INTO users (name) VALUES (?)", arguments: ["Writer \(i)"]) }) != nil
            let t1 = now()
            for (window, log) in logs where window.contains(t0) { log.add((t1 - t0) * 1000, ok: ok, at: (t0 - window.start) * 1000) }
            i += 1
            Thread.sleep(forTimeInterval: interval)
        }
        stop.finish()
    }
    writer.start()
}

final class LatencyLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Double] = []
    private var failed = 0
    private var stamped: [(Double, Double)] = []
    func add(_ ms: Double, ok: Bool, at offset: Double) {
        lock.withLock {
            list.append(ms)
            stamped.append((offset, ms))
            if !ok { failed += 1 }
        }
    }
    var values: [Double] { lock.withLock { list } }
    var timed: [(Double, Double)] { lock.withLock { stamped } }
    var errors: Int { lock.withLock { failed } }
}

final class Window: @unchecked Sendable {
    private let lock = NSLock()
    private var from = Double.infinity
    private var to = Double.infinity
    func open(_ t: Double) { lock.withLock { from = t } }
    func close(_ t: Double) { lock.withLock { to = t } }
    func contains(_ t: Double) -> Bool { lock.withLock { t >= from && t < to } }
    var start: Double { lock.withLock { from } }
}

final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private var value = (0, 0)
    func set(_ done: Int, _ total: Int) { lock.withLock { value = (done, total) } }
    func get() -> (Int, Int) { lock.withLock { value } }
}

final class Flag: @unchecked Sendable {
    private let lock = NSCondition()
    private var stopped = false
    private var finished = false
    var isSet: Bool { lock.withLock { stopped } }
    func set() { lock.withLock { stopped = true } }
    func finish() { lock.lock(); finished = true; lock.broadcast(); lock.unlock() }
    func waitFinished() { lock.lock(); while !finished { lock.wait() }; lock.unlock() }
}
