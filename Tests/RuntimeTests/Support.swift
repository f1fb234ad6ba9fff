import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Agent
import Drivers
import Manifest
import Planning
import Reconcile
import Runtime
import State
import Synchronization
import Traffic

/// A temporary data dir with an in-process router and a state store, for one test.
struct Sandbox {
    let dir: String
    let store: StateStore
    let router: Router

    static let app = """
    import http.server, json, os, sys, time
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            code = 200
            if self.path == "/healthz":
                body = b"ok"
                if os.environ.get("UNHEALTHY") or os.path.exists(os.environ.get("UNHEALTHY_WHILE", "/nonexistent")):
                    code = 500
            elif self.path.startswith("/slow/"):
                time.sleep(float(self.path[len("/slow/"):]))
                body = os.environ["TEAL_COLOR"].encode()
            elif self.path.startswith("/say/"):
                sys.stderr.write("x" * int(self.path[len("/say/"):]) + "\\n")
                sys.stderr.flush()
                body = b"said"
            elif self.path == "/env":
                body = json.dumps(dict(os.environ, CWD=os.getcwd())).encode()
            else:
                body = os.environ["TEAL_COLOR"].encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    class S(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
    S(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    """

    static func make() async throws -> Sandbox {
        let dir = NSTemporaryDirectory() + "teal-runtime-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let router = Router(dataDir: dir)
        try await router.start()
        return Sandbox(dir: dir, store: try StateStore(dataDir: dir), router: router)
    }

    /// Writes the test app as the app folder of `commit` (what the materializer does from git).
    func materialize(app: String, commit: String) throws -> String {
        let folder = RuntimePaths(dataDir: dir).appFolder(app: app, commit: commit)
        if !FileManager.default.fileExists(atPath: folder) {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Self.app.write(toFile: "\(folder)/app.py", atomically: true, encoding: .utf8)
            chmod("\(folder)/app.py", 0o444)
            chmod(folder, 0o555)
        }
        return folder
    }

    /// The real drivers of this data dir, with `desired` as the only commit (no git).
    func drivers(_ desired: DesiredState, logLimit: Int = LogRotation.defaultLimit) -> ReconcileDrivers {
        ReconcileDrivers(source: SandboxSource(desired: desired, sandbox: self), schemas: SchemaBackendCatalog(dataDir: dir),
                         traffic: RouterTrafficDriver(dataDir: dir, command: ["/bin/false"]),
                         runtime: ProcessColorRuntime(dataDir: dir, logLimit: logLimit))
    }

    func reconciler() -> SandboxPass { SandboxPass(sandbox: self) }

    func executor(_ desired: DesiredState) -> StepRunner {
        StepRunner(drivers: drivers(desired), store: store, desired: desired)
    }

    func supervisor(desired: DesiredState = desiredShop(listen: 1, live: nil, colors: [:]), logLimit: Int = LogRotation.defaultLimit,
                    settings: @escaping @Sendable (String, ColorName) -> ColorSupervisor.Settings?) -> ColorSupervisor {
        ColorSupervisor(drivers: drivers(desired, logLimit: logLimit), store: store, settings: { settings($0, $1) })
    }

    /// Makes every later write of a color record fail, as a full disk or a broken state database would.
    func failColorWrites() throws {
        try run(["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("CREATE TRIGGER refuse_colors BEFORE INSERT ON colors BEGIN SELECT RAISE(ABORT, 'disk full'); END")
            db.commit()
            """, "\(dir)/state.db"])
    }

    /// Stops every color this sandbox started and the router, and removes the folder.
    func tearDown() async {
        for record in (try? store.colors()) ?? [] { await record.identity?.stop(grace: .seconds(2)) }
        await router.stop()
        let folder = "\(dir)/apps"
        if let items = FileManager.default.enumerator(atPath: folder) {
            chmod(folder, 0o755)
            while let item = items.nextObject() as? String { chmod("\(folder)/\(item)", 0o755) }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// A source serving one desired state and the test app as every working copy: these tests are about colors
/// and traffic, not git.
struct SandboxSource: Source {
    let desired: DesiredState
    let sandbox: Sandbox
    private let notes = Notes()

    final class Notes: Sendable {
        let value = Mutex<[String: String]>([:])
        func withLock<T>(_ body: (inout [String: String]) -> T) -> T { value.withLock { body(&$0) } }
    }

    init(desired: DesiredState, sandbox: Sandbox) {
        self.desired = desired
        self.sandbox = sandbox
    }

    var description: String { "sandbox" }
    func tip() async throws -> String { desired.commit }
    func desiredState(at commit: String) async throws -> DesiredState { desired }
    func commits(after ancestor: String, before tip: String) async throws -> [String] { [] }
    func isAncestor(_ ancestor: String, of commit: String) async throws -> Bool { ancestor == commit }
    func summary(of commit: String) async throws -> CommitSummary? { nil }
    func note(for commit: String) async throws -> String? { notes.withLock { $0[commit] } }
    func setNote(_ text: String, for commit: String) async throws { notes.withLock { $0[commit] = text } }
    func workingCopy(app: String, commit: String) async throws -> String { try sandbox.materialize(app: app, commit: commit) }
    func pruneWorkingCopies(keeping: [(app: String, commit: String)]) async -> Int { 0 }
}

/// One pass over a desired state, reported as these tests look at it.
struct SandboxPass {
    struct Report {
        var plan: Plan
        var outcome: Outcome
        var steps: [AuditRecord.StepRecord]
        /// The step that failed and why.
        var failure: (step: PlannedStep, error: String)?
        var completed: [PlannedStep]
    }

    let sandbox: Sandbox

    func plan(_ desired: DesiredState) async throws -> Plan {
        try await ReconcilePipeline(drivers: sandbox.drivers(desired), store: sandbox.store).plan().plan
    }

    func reconcile(_ desired: DesiredState) async throws -> Report {
        let report = await ReconcilePipeline(drivers: sandbox.drivers(desired), store: sandbox.store).pass()
        let audit: AuditRecord?
        switch report.result {
        case .ended(let record), .repairedDrift(let record): audit = record
        case .nothingToDo: audit = nil
        case .willRetry(let failure), .notReconciled(let failure): throw failure
        case .stopped: throw RuntimeError("stopped")
        case .held(let apps): throw RuntimeError("held: \(apps)")
        }
        let steps = audit?.steps ?? []
        var failure: (step: PlannedStep, error: String)?
        var completed: [PlannedStep] = []
        for (planned, step) in zip(report.plan.steps, steps) where !step.superseded {
            if let error = step.error { failure = (planned, error) } else { completed.append(planned) }
        }
        return Report(plan: report.plan, outcome: audit?.outcome ?? .applied, steps: steps, failure: failure, completed: completed)
    }
}

/// A one-app desired state running the test app.
func desiredShop(listen: Int, live: ColorName?, colors: [ColorName: [String: String]], commit: String = "c0ffee") -> DesiredState {
    var health = HealthCheck()
    health.interval = .milliseconds(100)
    health.timeout = .seconds(1)
    health.healthyAfter = 2
    // Generous: the whole suite shares two cores; tests of a color that never gets healthy wait this long.
    health.startTimeout = .seconds(8)
    let specs = colors.mapValues { env in
        ColorSpec(release: "1.0", command: ["python3", "app.py"], schema: "0001_init", env: env)
    }
    let environment = EnvironmentManifest(database: .sqliteRelative("shop.db"), health: health, drain: .seconds(2), colors: specs)
    let migration = Migration(name: "0001_init", number: 1, checksum: "init", operations: [])
    let app = AppManifest(name: "shop", environment: environment,
                          traffic: TrafficManifest(listen: ListenAddress(host: "127.0.0.1", port: listen), route: live.map { .live($0) } ?? .none),
                          migrations: [migration], specCommits: specs.mapValues { _ in commit })
    return DesiredState(commit: commit, apps: ["shop": app])
}

/// GET over a fresh connection; (status, body), or nil when the connection failed.
func get(port: Int, path: String = "/") async -> (status: Int, body: String)? {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.timeoutIntervalForRequest = 5
    let session = URLSession(configuration: configuration)
    defer { session.finishTasksAndInvalidate() }
    guard let (data, response) = try? await session.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!),
          let http = response as? HTTPURLResponse else { return nil }
    return (http.statusCode, String(decoding: data, as: UTF8.self))
}

/// Runs a command found on PATH to completion; throws when it fails.
@discardableResult
func run(_ argv: [String], in directory: String? = nil, input: Data? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = argv
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let output = Pipe()
    process.standardOutput = output
    let stdin = Pipe()
    process.standardInput = stdin
    try process.run()
    if let input { stdin.fileHandleForWriting.write(input) }
    try stdin.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw RuntimeError("\(argv.joined(separator: " ")) exited \(process.terminationStatus)") }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Live processes whose environment holds `entry` (NAME=VALUE).
func livePids(withEnvironment entry: String) -> [Int32] {
    let wanted = Array(entry.utf8)
    let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
    return pids.filter { pid in
        guard ProcessIdentity.of(pid: pid) != nil, let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
        return data.split(separator: 0).contains { Array($0) == wanted }
    }
}

/// A router process that holds the data dir's pid file and admin socket but drops every admin request
/// unanswered (a router wedged or crashing mid-request).
struct UnansweringRouter {
    let identity: ProcessIdentity
    let paths: RouterPaths

    init(dataDir: String) throws {
        paths = RouterPaths(dataDir: dataDir)
        identity = try DetachedProcess.spawn(argv: ["/usr/bin/env", "python3", "-c", """
            import os, socket, sys
            s = socket.socket(socket.AF_UNIX)
            s.bind(sys.argv[1])
            s.listen(64)
            with open(sys.argv[2] + ".tmp", "w") as f:
                f.write(str(os.getpid()) + "\\n")
            os.rename(sys.argv[2] + ".tmp", sys.argv[2])
            while True:
                c, _ = s.accept()
                c.close()
            """, paths.socket, paths.pid], environment: ProcessInfo.processInfo.environment, directory: dataDir,
            logPath: "\(dataDir)/logs/unanswering-router.log")
        let deadline = ContinuousClock.now + .seconds(5)
        while !FileManager.default.fileExists(atPath: paths.pid) && ContinuousClock.now < deadline { usleep(20_000) }
    }

    func stop() async {
        await identity.stop(grace: .seconds(2))
        unlink(paths.socket)
        unlink(paths.pid)
    }
}
