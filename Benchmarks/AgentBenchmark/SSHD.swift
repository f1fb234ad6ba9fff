import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An OpenSSH server of the benchmark's own (Debian's openssh-server: its own config, host key and client key, no
/// PAM, not the system service) on a free loopback port, so the desired-state repository can sit behind SSH as it
/// would on GitHub or Gitea. Stopped by pid.
final class LocalSSHD {
    let dir: String
    let port: Int
    var clientKey: String { "\(dir)/client_key" }
    var knownHosts: String { "\(dir)/known_hosts" }
    private var process: Process?

    init(dir: String) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd"), let keygen = which("ssh-keygen") else {
            throw BenchmarkError("the ssh part needs /usr/sbin/sshd and ssh-keygen (Debian: openssh-server, openssh-client)")
        }
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        port = try freePort()
        for key in ["host_key", "client_key"] {
            try run(keygen, ["-q", "-t", "ed25519", "-N", "", "-C", key, "-f", "\(dir)/\(key)"])
        }
        try FileManager.default.copyItem(atPath: "\(dir)/client_key.pub", toPath: "\(dir)/authorized_keys")
        let hostKey = try String(contentsOfFile: "\(dir)/host_key.pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        try "[127.0.0.1]:\(port) \(hostKey)\n".write(toFile: knownHosts, atomically: true, encoding: .utf8)
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

            """.write(toFile: "\(dir)/sshd_config", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/sshd")
        process.arguments = ["-D", "-f", "\(dir)/sshd_config", "-E", "\(dir)/sshd.log"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        _ = try waitFor("sshd on 127.0.0.1:\(port) (log: \(dir)/sshd.log)", timeout: 10, every: 0.05) { () -> Bool? in
            guard process.isRunning else { throw BenchmarkError("sshd exited \(process.terminationStatus); see \(dir)/sshd.log") }
            return Self.accepts(port) ? true : nil
        }
    }

    /// The URL of a repository at an absolute path on this host, for the current user.
    func url(_ path: String) -> String { "ssh://\(NSUserName())@127.0.0.1:\(port)\(path)" }

    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = clock.now + .seconds(5)
        while process.isRunning && clock.now < deadline { pause(0.02) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    private static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
