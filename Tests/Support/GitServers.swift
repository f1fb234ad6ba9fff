import Foundation
import Runtime

/// Real git servers for remote-repository tests, on loopback and free ports, each in a folder of its own and
/// stopped by pid.

/// A server process in the foreground, in a session of its own, its output in a log file, ended by `stop`.
/// Started with posix_spawn rather than Foundation's Process, whose child reaping is shared with every other
/// Process of the test run.
final class ServerProcess: @unchecked Sendable {
    let identity: ProcessIdentity

    init(_ argv: [String], log: String) throws {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/bin"
        var argv = argv
        if !argv[0].hasPrefix("/"),
           let found = path.split(separator: ":").map({ "\($0)/\(argv[0])" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            argv[0] = found
        }
        identity = try DetachedProcess.spawn(argv: argv, environment: ProcessInfo.processInfo.environment,
                                             directory: NSTemporaryDirectory(), logPath: log)
    }

    func stop() {
        kill(identity.pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while identity.isAlive && Date() < deadline { usleep(20_000) }
        if identity.isAlive { kill(identity.pid, SIGKILL) }
    }
}

/// Runs a command to completion; throws with its output when it fails.
@discardableResult
public func runTool(_ argv: [String], in directory: String? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = argv
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw NSError(domain: "tool", code: Int(process.terminationStatus),
                      userInfo: [NSLocalizedDescriptionKey: "\(argv.joined(separator: " ")) failed: \(text)"])
    }
    return text
}

func waitForPort(_ port: Int, timeout: TimeInterval = 10) {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if connected == 0 { return }
        usleep(50_000)
    }
}

/// An OpenSSH server of the test's own (Debian's openssh-server, its own config and host key, no PAM), letting
/// the current user in with one client key.
public struct SSHServer {
    public let dir: String
    public let port: Int
    public var clientKey: String { "\(dir)/client_key" }
    public var otherKey: String { "\(dir)/other_key" }
    /// A known_hosts file holding the server's host key.
    public var knownHosts: String { "\(dir)/known_hosts" }
    /// The host key's fingerprint, `SHA256:...`.
    public let fingerprint: String
    public var user: String { NSUserName() }
    private let server: ServerProcess

    /// An RSA client key, also authorized.
    public var rsaKey: String { "\(dir)/rsa_key" }

    /// `acceptedKeyTypes`: the server's `PubkeyAcceptedAlgorithms`, when not OpenSSH's default.
    public init(acceptedKeyTypes: String? = nil) throws {
        dir = NSTemporaryDirectory() + "teal-sshd-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        port = freeLoopbackPort()
        for key in ["host_key", "client_key", "other_key"] {
            try runTool(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", "\(dir)/\(key)"])
        }
        try runTool(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "rsa_key", "-f", "\(dir)/rsa_key"])
        let folder = dir
        let authorized = try ["client_key.pub", "rsa_key.pub"].map { try String(contentsOfFile: "\(folder)/\($0)", encoding: .utf8) }
        try authorized.joined().write(toFile: "\(dir)/authorized_keys", atomically: true, encoding: .utf8)
        let hostKey = try String(contentsOfFile: "\(dir)/host_key.pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        try "[127.0.0.1]:\(port) \(hostKey)\n".write(toFile: "\(dir)/known_hosts", atomically: true, encoding: .utf8)
        fingerprint = String(try runTool(["ssh-keygen", "-l", "-E", "sha256", "-f", "\(dir)/host_key.pub"]).split(separator: " ")[1])
        try """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(dir)/host_key
            AuthorizedKeysFile \(dir)/authorized_keys
            PidFile \(dir)/sshd.pid
            UsePAM no
            StrictModes no
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            \(acceptedKeyTypes.map { "PubkeyAcceptedAlgorithms \($0)" } ?? "")

            """.write(toFile: "\(dir)/sshd_config", atomically: true, encoding: .utf8)
        server = try ServerProcess(["/usr/sbin/sshd", "-D", "-f", "\(dir)/sshd_config", "-E", "\(dir)/sshd.log"], log: "\(dir)/start.log")
        waitForPort(port)
    }

    /// The URL of a repository at an absolute path on this host.
    public func url(_ path: String) -> String { "ssh://\(user)@127.0.0.1:\(port)\(path)" }

    public func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// `git daemon` serving every repository under `base` over git://.
public struct GitDaemon {
    public let base: String
    public let port: Int
    private let log: String
    private let server: ServerProcess

    public init(base: String) throws {
        self.base = base
        port = freeLoopbackPort()
        log = NSTemporaryDirectory() + "teal-git-daemon-\(UUID().uuidString.prefix(8)).log"
        server = try ServerProcess(["git", "daemon", "--reuseaddr", "--base-path=\(base)", "--export-all", "--enable=receive-pack",
                                    "--port=\(port)", "--listen=127.0.0.1", base], log: log)
        waitForPort(port)
    }

    public func url(_ name: String) -> String { "git://127.0.0.1:\(port)/\(name)" }

    public func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: log)
    }
}

