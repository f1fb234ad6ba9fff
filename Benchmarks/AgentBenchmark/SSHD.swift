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
    private var pid: Int32 = 0

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
        // In a session of its own (setsid -f), outside this process's group and Foundation's child reaping: sshd
        // ends its whole process group on SIGTERM.
        guard let setsid = which("setsid") else { throw BenchmarkError("the ssh part needs setsid (util-linux)") }
        try run(setsid, ["-f", "/usr/sbin/sshd", "-D", "-f", "\(dir)/sshd_config", "-E", "\(dir)/sshd.log"])
        pid = try waitFor("sshd on 127.0.0.1:\(port) (log: \(dir)/sshd.log)", timeout: 10, every: 0.05) { () -> Int32? in
            guard Self.accepts(port), let text = try? String(contentsOfFile: "\(dir)/sshd.pid", encoding: .utf8) else { return nil }
            return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// The URL of a repository at an absolute path on this host, for the current user.
    func url(_ path: String) -> String { "ssh://\(NSUserName())@127.0.0.1:\(port)\(path)" }

    func stop() {
        guard pid > 0, kill(pid, 0) == 0 else { return }
        kill(pid, SIGTERM)
        let deadline = clock.now + .seconds(5)
        while kill(pid, 0) == 0 && clock.now < deadline { pause(0.02) }
        if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        pid = 0
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
