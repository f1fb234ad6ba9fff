import Foundation
import Synchronization

/// Free loopback ports, chosen by binding port 0.
public enum FreePort {
    /// The last ports handed out: the kernel may give the same free port to two binds in a row, and two colors
    /// (or a color and a listen address) on one port is a loop or a clash.
    private static let recent = Mutex<[Int]>([])
    private static let remembered = 512

    /// A port on 127.0.0.1 that nothing listened on a moment ago and that this process has not handed out lately.
    public static func pick() throws -> Int {
        while true {
            let port = try unused()
            let fresh = recent.withLock { ports in
                guard !ports.contains(port) else { return false }
                ports.append(port)
                if ports.count > remembered { ports.removeFirst(ports.count - remembered) }
                return true
            }
            if fresh { return port }
        }
    }

    private static func unused() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RuntimeError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw RuntimeError("cannot bind a free port: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
