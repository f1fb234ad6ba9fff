import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Undo actions run in reverse order, once, on the normal path, on an error, or on SIGINT/SIGTERM.
final class Cleanup: @unchecked Sendable {
    private let lock = NSLock()
    private var actions: [(id: Int, what: String, action: () -> Void)] = []
    private var nextID = 0

    @discardableResult
    func add(_ what: String, _ action: @escaping () -> Void) -> Int {
        lock.lock(); defer { lock.unlock() }
        nextID += 1
        actions.append((nextID, what, action))
        return nextID
    }

    /// Runs the actions registered after (and including) `id`, newest first.
    func run(from id: Int = 0) {
        lock.lock()
        let due = actions.filter { $0.id >= id }.reversed()
        actions.removeAll { $0.id >= id }
        lock.unlock()
        for item in due { item.action() }
    }
}

/// A desired-state repository driven with the git CLI, as a user would.
struct GitRepo {
    let path: String
    let git: String

    @discardableResult
    func run(_ arguments: [String], check: Bool = true) throws -> Finished {
        try AgentBenchmark.run(git, ["-C", path] + arguments, timeout: 60, check: check)
    }

    /// Identity and settings local to this scratch repository.
    func configure() throws {
        try run(["config", "user.name", "teal bench"])
        try run(["config", "user.email", "bench@localhost"])
        try run(["config", "commit.gpgsign", "false"])
        try run(["config", "gc.auto", "0"])
    }

    /// The teal note on HEAD (`git notes --ref=teal show HEAD`), nil when there is none yet.
    func tealNote(_ rev: String = "HEAD") -> String? {
        guard let result = try? run(["notes", "--ref=teal", "show", rev], check: false), result.status == 0 else { return nil }
        return result.output
    }

    func head() throws -> String {
        try run(["rev-parse", "HEAD"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The first line of a note: `outcome: applied` → "applied".
func outcome(ofNote note: String) -> String {
    let first = note.split(separator: "\n").first.map(String.init) ?? ""
    return first.hasPrefix("outcome:") ? first.dropFirst("outcome:".count).trimmingCharacters(in: .whitespaces) : first
}

/// `teal watch` as a child process, its output in a log file.
final class AgentProcess {
    let teal: String
    let repo: String
    let dataDir: String
    let adminPort: Int
    let logPath: String
    private(set) var process: Process?

    init(teal: String, repo: String, dataDir: String, adminPort: Int, logPath: String) {
        self.teal = teal
        self.repo = repo
        self.dataDir = dataDir
        self.adminPort = adminPort
        self.logPath = logPath
    }

    var pid: Int32 { process?.processIdentifier ?? 0 }

    /// The command line, as it would be typed.
    func arguments(extra: [String]) -> [String] {
        ["watch", "--repo", repo, "--data-dir", dataDir] + extra + ["--admin", "127.0.0.1:\(adminPort)"]
    }

    func start(extra: [String]) throws {
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: teal)
        process.arguments = arguments(extra: extra)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
        self.process = process
        _ = try waitFor("the admin endpoint on 127.0.0.1:\(adminPort)", timeout: 30, every: 0.05) { () -> Bool? in
            guard process.isRunning else { throw BenchmarkError("teal watch exited \(process.terminationStatus); log: \(tail())") }
            return http("GET", port: adminPort, path: "/metrics", timeout: 1)?.status == 200 ? true : nil
        }
    }

    /// SIGTERM, then SIGKILL after `grace` seconds.
    func stop(grace: Double = 10) {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = clock.now + .milliseconds(Int(grace * 1000))
        while process.isRunning && clock.now < deadline { pause(0.02) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    func webhook() -> Int? {
        http("POST", port: adminPort, path: "/hooks/git", body: "{}", headers: ["Content-Type": "application/json",
                                                                             "X-GitHub-Event": "push"])?.status
    }

    /// GET /status, decoded.
    func status() -> [String: Any]? {
        guard let response = http("GET", port: adminPort, path: "/status", timeout: 10), response.status == 200 else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
    }

    func tail(_ lines: Int = 15) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

/// Stops the agent, then everything the data dir started (`teal down`), bounded.
func tearDown(agent: AgentProcess, teal: String) {
    agent.stop()
    if FileManager.default.fileExists(atPath: agent.dataDir) {
        do {
            try run(teal, ["down", "--data-dir", agent.dataDir, "--grace", "2"], timeout: 120)
        } catch {
            FileHandle.standardError.write(Data("teal down --data-dir \(agent.dataDir): \(error)\n".utf8))
        }
    }
}
