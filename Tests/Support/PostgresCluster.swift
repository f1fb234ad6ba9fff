import Foundation

/// A PostgreSQL cluster of the test run's own: `initdb` into a temporary folder, `pg_ctl start` on a free
/// loopback port with password (SCRAM) authentication, stopped when the test process exits. Run as the
/// `postgres` user when the tests run as root (PostgreSQL refuses to run as root). Each test makes a database of
/// its own with `createDatabase`.
public final class PostgresCluster: @unchecked Sendable {
    public let port: Int
    public let user = "teal"
    public let password: String
    /// A libpq password file for the cluster (mode 0600), as users give teal and colors theirs.
    public let passFile: String
    public let folder: String
    public let version: String
    let bin: String
    private let asUser: [String]

    /// The cluster, started on first use; nil (with why) when PostgreSQL's server binaries are not installed.
    public static let shared: Result<PostgresCluster, PostgresClusterError> = {
        do { return .success(try PostgresCluster()) } catch let e as PostgresClusterError { return .failure(e) }
        catch { return .failure(PostgresClusterError(description: "\(error)")) }
    }()

    /// The shared cluster, or a failure that says what is missing.
    public static func get() throws -> PostgresCluster { try shared.get() }

    private init() throws {
        guard let bin = Self.binDirectory() else {
            throw PostgresClusterError(description: "PostgreSQL server binaries not found (apt-get install postgresql; or set TEAL_PG_BINDIR)")
        }
        self.bin = bin
        version = (try? runTool(["\(bin)/postgres", "--version"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?"
        let root = geteuid() == 0
        asUser = root ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] : []
        folder = NSTemporaryDirectory() + "teal-pg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        password = UUID().uuidString
        let pwfile = folder + "/pw"
        try password.write(toFile: pwfile, atomically: true, encoding: .utf8)
        if root { _ = try runTool(["chown", "-R", "postgres:postgres", folder]) }
        port = freeLoopbackPort()
        _ = try runTool(asUser + ["\(bin)/initdb", "-D", "\(folder)/data", "-U", user, "--pwfile", pwfile, "--auth=scram-sha-256",
                                  "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
        let conf = """
            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(folder)'
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            max_connections = 200
            shared_buffers = 128MB
            log_min_messages = warning
            """
        let confPath = "\(folder)/data/postgresql.auto.conf"
        let existing = (try? String(contentsOfFile: confPath, encoding: .utf8)) ?? ""
        try (existing + "\n" + conf + "\n").write(toFile: confPath, atomically: true, encoding: .utf8)
        if root { _ = try runTool(["chown", "postgres:postgres", confPath]) }
        try Self.detached(asUser + ["\(bin)/pg_ctl", "-D", "\(folder)/data", "-l", "\(folder)/server.log", "-w", "-t", "60", "start"], log: "\(folder)/pg_ctl.log")
        passFile = NSTemporaryDirectory() + "teal-pgpass-\(port)"
        try "127.0.0.1:\(port):*:\(user):\(password)\nlocalhost:\(port):*:\(user):\(password)\n".write(toFile: passFile, atomically: true, encoding: .utf8)
        chmod(passFile, 0o600)
        let data = "\(folder)/data"
        let stop = asUser + ["\(bin)/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]
        Self.stopCommand = stop
        atexit {
            if let argv = PostgresCluster.stopCommand { try? PostgresCluster.detached(argv, log: "/dev/null") }
        }
    }

    nonisolated(unsafe) static var stopCommand: [String]?

    /// Runs pg_ctl with its output in a file: the server it starts keeps whatever it inherited open, so a pipe
    /// would never reach its end.
    static func detached(_ argv: [String], log: String) throws {
        let fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw PostgresClusterError(description: "cannot write \(log)") }
        defer { close(fd) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fd, 1)
        posix_spawn_file_actions_adddup2(&actions, fd, 2)
        let full = ["/usr/bin/env"] + argv
        var cArgs = full.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var cEnv = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cEnv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/usr/bin/env", &actions, nil, &cArgs, &cEnv)
        guard rc == 0 else { throw PostgresClusterError(description: "cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        let code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw PostgresClusterError(description: "\(argv.joined(separator: " ")) failed (status \(status)): \(text.suffix(2000))")
        }
    }

    /// Restarts the server (a database restart mid-work, for fault tests).
    public func restart() throws {
        try Self.detached(asUser + ["\(bin)/pg_ctl", "-D", "\(folder)/data", "-l", "\(folder)/server.log", "-m", "fast", "-w", "-t", "60", "restart"],
                          log: "\(folder)/pg_ctl.log")
    }

    /// A URL without the password (teal and colors find it in `passFile`).
    public func url(_ database: String) -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)?sslmode=disable" }

    /// Makes an empty database and returns its name.
    public func createDatabase(_ prefix: String = "t") throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        try psql("postgres", "CREATE DATABASE \"\(name)\"")
        return name
    }

    /// Runs SQL through `psql` (unaligned, tuples only) and returns its output; as teal's user, or as `role` with
    /// its password.
    @discardableResult
    public func psql(_ database: String, _ sql: String, options: String? = nil, role: (name: String, password: String)? = nil) throws -> String {
        var env = role.map { ["PGPASSWORD=\($0.password)"] } ?? ["PGPASSFILE=\(passFile)"]
        if let options { env.append("PGOPTIONS=\(options)") }
        return try runTool(["env"] + env + ["\(bin)/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                                            "-p", String(port), "-U", role?.name ?? user, "-d", database, "-c", sql])
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A psql session running `sql` in the background (holding a lock, say) until `stop`.
    public func background(_ database: String, _ sql: String) throws -> BackgroundSession {
        let log = NSTemporaryDirectory() + "teal-psql-\(UUID().uuidString.prefix(8)).log"
        let process = try ServerProcess(["env", "PGPASSFILE=\(passFile)", "\(bin)/psql", "-X", "-q", "-h", "127.0.0.1", "-p", String(port),
                                         "-U", user, "-d", database, "-c", sql], log: log)
        return BackgroundSession(process: process, log: log)
    }

    static func binDirectory() -> String? {
        if let dir = ProcessInfo.processInfo.environment["TEAL_PG_BINDIR"] { return dir }
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        return versions.map { "\(base)/\($0)/bin" }.first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
    }
}

public struct PostgresClusterError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// A background psql session; `stop` ends it (and its transaction).
public final class BackgroundSession: @unchecked Sendable {
    let process: ServerProcess
    public let log: String
    init(process: ServerProcess, log: String) { self.process = process; self.log = log }
    public var pid: Int32 { process.identity.pid }
    public func stop() { process.stop() }
}
