import Foundation
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// Is a listen address free, and if not, which process holds it (from /proc: the listening socket's inode, then the
/// process with a descriptor on it).
public enum ListenProbe {
    /// nil when `address` can be bound now; else who holds it ("pid 1234 (nginx)", or "another process").
    public static func holder(_ address: ListenAddress) -> String? {
        let host = address.host == "localhost" ? "127.0.0.1" : address.host
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        let result: Int32
        if v6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = in_port_t(UInt16(address.port).bigEndian)
            guard inet_pton(AF_INET6, host, &sa.sin6_addr) == 1 else { return nil }
            result = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(UInt16(address.port).bigEndian)
            guard inet_pton(AF_INET, host, &sa.sin_addr) == 1 else { return nil }
            result = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard result != 0, errno == EADDRINUSE else { return nil }
        return owner(port: address.port) ?? "another process"
    }

    /// The process listening on TCP `port`, from /proc/net/tcp{,6} and /proc/*/fd.
    static func owner(port: Int) -> String? {
        let hexPort = String(format: "%04X", port)
        var inodes = Set<String>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, fields[3] == "0A", fields[1].hasSuffix(":" + hexPort) else { continue }
                inodes.insert(String(fields[9]))
            }
        }
        guard !inodes.isEmpty, let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for pid in pids where pid.allSatisfy(\.isNumber) {
            guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for fd in fds {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                      target.hasPrefix("socket:["), inodes.contains(String(target.dropFirst(8).dropLast())) else { continue }
                let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                return "pid \(pid)\(name.map { " (\($0))" } ?? "")"
            }
        }
        return nil
    }
}

extension TrafficDriver {
    public func listenHolder(_ address: ListenAddress) async -> String? { ListenProbe.holder(address) }
}
