import Foundation
#if canImport(Glibc)
import Glibc
#endif

// MARK: - A revert while a backfill runs

struct RevertResult {
    var rows: Int
    var command: String
    /// Backfill progress when the revert was committed.
    var doneAtRevert: Int
    var total: Int
    /// From the end of `git revert` to the migration's history saying `rolled_back` (only the old shape declared).
    var toRolledBack: Double
    /// From the end of `git revert` to the leftover values cleared (NOT NULL re-declared, rows rewritten).
    var toCleared: Double
    /// From the end of `git revert` to its note.
    var toNote: Double
    var writerDuring: [Double]
    var writerBefore: [Double]
    var writerFailures: Int
    var deployOutcome: String
    var revertOutcome: String
    var greenStarted: Bool
}

/// One old-shape writer inserting a row every 5 ms through Python's `sqlite3` (10 s busy timeout), which also
/// watches the migration's progress and state and prints timestamped events (CLOCK_MONOTONIC, as the benchmark's).
private let revertWatcher = """
    import json, sqlite3, sys, threading, time
    db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
    db.execute("PRAGMA synchronous = NORMAL")
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    def say(*words):
        print(*words, flush=True)
    def one(sql):
        try:
            return db.execute(sql).fetchone()
        except sqlite3.OperationalError:
            return None
    latencies, failures, i = [], 0, 0
    seen = set()
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            db.execute("INSERT INTO users (name) VALUES (?)", ("Writer %d" % i,))
        except sqlite3.Error as error:
            failures += 1
            say("error", repr(error))
        latencies.append((t0, (time.monotonic() - t0) * 1000))
        i += 1
        if "backfill" not in seen:
            row = one("SELECT sum(done), sum(total) FROM _teal_backfill WHERE migration = '0002_split_name'")
            if row and row[0] and row[1] and row[0] * 10 >= row[1] * 3:
                seen.add("backfill"); say("backfill", time.monotonic(), row[0], row[1])
        elif "rolled_back" not in seen:
            row = one("SELECT state FROM _teal_migrations WHERE name = '0002_split_name'")
            if row and row[0] == "rolled_back":
                seen.add("rolled_back"); say("rolled_back", time.monotonic())
        elif "cleared" not in seen:
            trim, notnull = one("SELECT count(*) FROM _teal_trim"), one("SELECT count(*) FROM _teal_not_null")
            if (trim is None or trim[0] == 0) and (notnull is None or notnull[0] == 0):
                seen.add("cleared"); say("cleared", time.monotonic())
        time.sleep(0.005)
    say("latencies", json.dumps(latencies), failures)
    """

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Lines a child prints, gathered by a thread of their own.
final class LineReader: @unchecked Sendable {
    private let lock = NSCondition()
    private var lines: [String] = []
    private var ended = false

    init(_ handle: FileHandle) {
        Thread {
            var buffer = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: 10) {
                    let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                    buffer.removeSubrange(buffer.startIndex...newline)
                    self.lock.lock(); self.lines.append(line); self.lock.broadcast(); self.lock.unlock()
                }
            }
            self.lock.lock(); self.ended = true; self.lock.broadcast(); self.lock.unlock()
        }.start()
    }

    /// The first line starting with `prefix`, waiting up to `timeout` seconds.
    func line(_ prefix: String, timeout: Double) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock(); defer { lock.unlock() }
        while true {
            if let line = lines.first(where: { $0.hasPrefix(prefix + " ") || $0 == prefix }) { return line }
            if ended || !lock.wait(until: deadline) { return lines.first { $0.hasPrefix(prefix + " ") } }
        }
    }
}

/// The example shop with blue live and `rows` users; commit green on 0002_split_name (a backfill of every row),
/// and when 30% of the rows are backfilled, `git revert` it. Times the revert to the migration rolled back and its
/// leftovers cleared, with a writer inserting every 5 ms throughout.
func revertDuringBackfill(rows: Int, settings s: Settings) throws -> RevertResult {
    let dir = "\(s.work)/revert-backfill"
    let repo = GitRepo(path: "\(dir)/repo", git: s.git)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var initArguments = ["init", repo.path]
    if let manifests = s.manifests { initArguments += ["--from", manifests] }
    try run(s.teal, initArguments)
    try repo.configure()
    try repo.run(["reset", "-q"])
    let listen = try freePort()
    let shop = "\(repo.path)/apps/shop"
    try "listen: 127.0.0.1:\(listen)\nlive: blue\n".write(toFile: "\(shop)/traffic.yaml", atomically: true, encoding: .utf8)
    try repo.run(["commit", "-q", "-a", "-m", "shop: listen on \(listen)"])

    let agent = AgentProcess(teal: s.teal, repo: repo.path, dataDir: "\(dir)/data", adminPort: try freePort(), logPath: "\(dir)/agent.log")
    let mark = s.cleanup.add("agent revert-backfill") { tearDown(agent: agent, teal: s.teal) }
    defer { s.cleanup.run(from: mark) }
    let extra = ["--interval", "1s"]
    try agent.start(extra: extra)
    _ = try waitFor("blue serving (log: \(agent.logPath))", timeout: 180, every: 0.2) { () -> Bool? in
        servingColor(port: listen) == "blue" && repo.tealNote().map(outcome(ofNote:)) == "applied" ? true : nil
    }
    let database = "\(dir)/data/shop.db"
    try run("/usr/bin/env", ["python3", "-c", """
        import sqlite3, sys
        db = sqlite3.connect(sys.argv[1], timeout=10)
        db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) INSERT INTO users (name) SELECT 'First' || i || ' Last' || i FROM n", (int(sys.argv[2]),))
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        """, database, "\(rows)"], timeout: 600)

    let script = "\(dir)/watcher.py"
    try revertWatcher.write(toFile: script, atomically: true, encoding: .utf8)
    let watcher = Process()
    watcher.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    watcher.arguments = ["python3", script, database]
    let input = Pipe()
    let output = Pipe()
    watcher.standardInput = input
    watcher.standardOutput = output
    watcher.standardError = FileHandle.standardError
    try watcher.run()
    s.cleanup.add("watcher") { if watcher.isRunning { kill(watcher.processIdentifier, SIGKILL) } }
    let lines = LineReader(output.fileHandleForReading)
    let watchStart = monotonicNow()

    var environment = try String(contentsOfFile: "\(shop)/environment.yaml", encoding: .utf8)
    if !environment.hasSuffix("\n") { environment += "\n" }
    environment += "  green:\n    release: \"2.0.0\"\n    command: [\"python3\", \"app.py\"]\n    schema: 0002_split_name\n"
    try environment.write(toFile: "\(shop)/environment.yaml", atomically: true, encoding: .utf8)
    try repo.run(["commit", "-q", "-a", "-m", "shop: green 2.0.0 on 0002_split_name"])
    let deploy = try repo.head()
    guard let progress = lines.line("backfill", timeout: 300) else {
        throw BenchmarkError("the backfill never reached 30%; agent log:\n\(agent.tail())")
    }
    try repo.run(["revert", "--no-edit", "HEAD"])
    let reverted = monotonicNow()
    let revert = try repo.head()
    let words = progress.split(separator: " ")
    guard let rolledBack = lines.line("rolled_back", timeout: 120).flatMap({ Double($0.split(separator: " ")[1]) }) else {
        throw BenchmarkError("the migration was not rolled back within 120 s; agent log:\n\(agent.tail())")
    }
    guard let cleared = lines.line("cleared", timeout: 300).flatMap({ Double($0.split(separator: " ")[1]) }) else {
        throw BenchmarkError("the rollback's leftovers were not cleared within 300 s; agent log:\n\(agent.tail())")
    }
    let note = try waitFor("the revert's note", timeout: 120, every: 0.02) { repo.tealNote(revert) }
    let noted = monotonicNow()
    try input.fileHandleForWriting.close()
    guard let summary = lines.line("latencies", timeout: 60) else { throw BenchmarkError("the writer did not report") }
    watcher.waitUntilExit()
    let parts = summary.split(separator: " ", maxSplits: 1)[1]
    let json = String(parts[..<parts.lastIndex(of: " ")!])
    let failures = Int(parts[parts.index(after: parts.lastIndex(of: " ")!)...]) ?? -1
    let samples = (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[Double]]) ?? []
    let during = samples.filter { $0[0] >= reverted && $0[0] <= cleared }.map { $0[1] }.sorted()
    let before = samples.filter { $0[0] >= watchStart && $0[0] < reverted }.map { $0[1] }.sorted()
    let greenStarted = ((try? String(contentsOfFile: agent.logPath, encoding: .utf8)) ?? "").contains("started color") &&
        ((try? String(contentsOfFile: agent.logPath, encoding: .utf8)) ?? "").contains("color=green")
    return RevertResult(rows: rows, command: "teal " + agent.arguments(extra: extra).joined(separator: " "),
                        doneAtRevert: Int(words[2]) ?? 0, total: Int(words[3]) ?? 0,
                        toRolledBack: rolledBack - reverted, toCleared: cleared - reverted, toNote: noted - reverted,
                        writerDuring: during, writerBefore: before, writerFailures: failures,
                        deployOutcome: repo.tealNote(deploy).map(outcome(ofNote:)) ?? "none", revertOutcome: outcome(ofNote: note),
                        greenStarted: greenStarted)
}
