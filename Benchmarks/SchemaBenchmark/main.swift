// Schema engine benchmark: split a name column on N rows (default 1,000,000; `SchemaBenchmark 100000` or
// TEAL_BENCH_ROWS for a quick run) and print a table.
import Foundation
import GRDB
import Logging
import Manifest
import Schema

let rows = CommandLine.arguments.dropFirst().first.flatMap(Int.init)
    ?? ProcessInfo.processInfo.environment["TEAL_BENCH_ROWS"].flatMap(Int.init) ?? 1_000_000
let inserts = min(100_000, max(1000, rows / 10))
let work = FileManager.default.temporaryDirectory.appendingPathComponent("teal-schema-bench-\(getpid())")
try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: work) }

let up1 = "CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END"
let up2 = "CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END"
let split = Migration(name: "0002_split_name", number: 2, checksum: "bench", operations: [
    .addColumn(AddColumn(table: "users", column: Manifest.ColumnDefinition(name: "first_name", type: "text"), up: up1)),
    .addColumn(AddColumn(table: "users", column: Manifest.ColumnDefinition(name: "last_name", type: "text"), up: up2)),
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

let base = work.appendingPathComponent("base.db").path
do {
    let db = try connection(base)
    try db.write { db in
        try db.execute(sql: "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT)")
        try db.execute(sql: """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO users (name, email) SELECT 'First' || i || ' Last' || i, 'user' || i || '@example.com' FROM n
            """, arguments: [rows])
    }
    try db.writeWithoutTransaction { _ = try $0.checkpoint(.truncate) }
}

func copy(_ name: String) throws -> String {
    let path = work.appendingPathComponent(name).path
    try FileManager.default.copyItem(atPath: base, toPath: path)
    return path
}

var quiet = Logger(label: "bench")
quiet.logLevel = .warning

// (a) start vs one UPDATE computing the same values.
let baselinePath = try copy("baseline.db")
let baseline = try seconds {
    try connection(baselinePath).write { db in
        try db.execute(sql: "ALTER TABLE users ADD COLUMN first_name text")
        try db.execute(sql: "ALTER TABLE users ADD COLUMN last_name text")
        try db.execute(sql: "UPDATE users SET first_name = \(up1), last_name = \(up2)")
    }
}
let startPath = try copy("start.db")
let startTime = try seconds { try SchemaEngine(path: startPath, logger: quiet).start(split) }

// (b) a writer inserting one row every 5 ms during the backfill.
let writerPath = try copy("writer.db")
let latencies = LatencyLog()
let stop = Flag()
let writer = Thread {
    guard let db = try? connection(writerPath) else { return }
    var i = 0
    while !stop.isSet {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try? db.write { try $0.execute(sql: "INSERT INTO users (name) VALUES (?)", arguments: ["Writer \(i)"]) }
        latencies.add(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        i += 1
        Thread.sleep(forTimeInterval: 0.005)
    }
    stop.finish()
}
writer.start()
Thread.sleep(forTimeInterval: 0.1)
let writerStart = try seconds { try SchemaEngine(path: writerPath, logger: quiet).start(split) }
stop.set()
stop.waitFinished()
let sorted = latencies.values.sorted()
let p99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
let maxLatency = sorted.last ?? 0
let missing = try connection(writerPath).read { try Int.fetchOne($0, sql: "SELECT count(*) FROM users WHERE first_name IS NULL") ?? -1 }

// (c) single-row old-shape inserts without and with the expand triggers.
func insertRun(_ path: String) throws -> Double {
    let db = try connection(path)
    return try seconds {
        for i in 0..<inserts {
            try db.writeWithoutTransaction { try $0.execute(sql: "INSERT INTO users (name, email) VALUES (?, ?)", arguments: ["Bench \(i)", "b\(i)@example.com"]) }
        }
    }
}
let plain = try insertRun(try copy("plain.db"))
let triggered = try insertRun(startPath)
let triggeredRows = try connection(startPath).read { try Int.fetchOne($0, sql: "SELECT count(*) FROM users WHERE name LIKE 'Bench %' AND first_name = 'Bench'") ?? -1 }

func f(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }
print("Schema engine benchmark: split users.name on \(rows) rows (batch 1000)")
print("| measure | value | goal |")
print("|---|---|---|")
print("| (a) single UPDATE (ALTER + UPDATE, one transaction) | \(f(baseline)) s | |")
print("| (a) `start` (expand + batched backfill) | \(f(startTime)) s | |")
print("| (a) ratio start / UPDATE | \(f(startTime / baseline))x | <= 1.5x |")
print("| (b) `start` with a writer every 5 ms | \(f(writerStart)) s | |")
print("| (b) writer inserts during backfill | \(sorted.count) (rows left unfilled: \(missing)) | |")
print("| (b) writer latency p99 | \(f(p99)) ms | |")
print("| (b) writer latency max | \(f(maxLatency)) ms | <= 50 ms |")
print("| (c) \(inserts) old-shape inserts, no triggers | \(f(plain)) s (\(f(plain / Double(inserts) * 1e6, 1)) us each) | |")
print("| (c) \(inserts) old-shape inserts, expand triggers | \(f(triggered)) s (\(f(triggered / Double(inserts) * 1e6, 1)) us each, \(triggeredRows) split) | |")
print("| (c) trigger cost ratio | \(f(triggered / plain))x | <= 2x |")

final class LatencyLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Double] = []
    func add(_ ms: Double) { lock.withLock { list.append(ms) } }
    var values: [Double] { lock.withLock { list } }
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
