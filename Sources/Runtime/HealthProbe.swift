import Foundation
import Manifest

/// HTTP GET against a color on 127.0.0.1, with a deadline for the whole exchange.
public enum HealthProbe {
    /// The outcome of one probe.
    public enum Result: Sendable, Equatable {
        case status(Int)
        case failed(String)

        public var passed: Bool {
            if case .status(let code) = self { return (200..<300).contains(code) }
            return false
        }

        public var summary: String {
            switch self {
            case .status(let code): "answered \(code)"
            case .failed(let reason): reason
            }
        }
    }

    /// One GET of `path`; blocking, at most `timeout` long.
    public static func get(port: Int, path: String, timeout: Duration) -> Result {
        let deadline = ContinuousClock.now + timeout
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failed("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected != 0 && errno != EINPROGRESS { return .failed("connection refused") }
        guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return .failed("timed out connecting") }
        var soError: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
        guard soError == 0 else { return .failed(soError == ECONNREFUSED ? "connection refused" : String(cString: strerror(soError))) }

        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: teal-health\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return .failed("timed out sending") }
            let n = request[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno != EAGAIN && errno != EINTR { return .failed("send: \(String(cString: strerror(errno)))") }
            if n > 0 { sent += n }
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while !received.contains(UInt8(ascii: "\n")) && received.count < 8192 {
            guard wait(fd, for: Int16(POLLIN), until: deadline) else { return .failed("timed out after \(timeout)") }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return .failed("receive: \(String(cString: strerror(errno)))")
            }
            received += chunk[0..<n]
        }
        let statusLine = String(decoding: received.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let code = Int(parts[1]) else {
            return .failed("no HTTP answer")
        }
        return .status(code)
    }

    /// One probe, run off the cooperative pool.
    public static func probe(port: Int, health: HealthCheck) async -> Result {
        await offThePool { get(port: port, path: health.path, timeout: health.timeout) }
    }

    /// Probes every `interval` until `healthyAfter` consecutive passes; fails when the process dies or
    /// `startTimeout` passes first.
    public static func waitHealthy(port: Int, process: ProcessIdentity?, health: HealthCheck, what: String,
                                   logPath: String? = nil) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + health.startTimeout
        var passes = 0
        var last = Result.failed("not probed yet")
        while true {
            if let process, !process.isAlive {
                throw RuntimeError("\(what) exited before it became healthy\(logPath.map { "; see \($0)" } ?? "")")
            }
            last = await probe(port: port, health: health)
            passes = last.passed ? passes + 1 : 0
            if passes >= max(1, health.healthyAfter) { return }
            if clock.now >= deadline {
                throw RuntimeError("\(what) did not become healthy within \(health.startTimeout): GET \(health.path) \(last.summary)"
                    + (logPath.map { "; see \($0)" } ?? ""))
            }
            try await Task.sleep(for: health.interval)
        }
    }

    private static func wait(_ fd: Int32, for events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return false }
            let ms = Int32(min(Double(remaining.components.seconds) * 1000 + Double(remaining.components.attoseconds) / 1e15 + 1, 60_000))
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&pfd, 1, ms)
            if n > 0 { return true }
            if n < 0 && errno != EINTR { return false }
        }
    }
}
