import Foundation

/// Talks to a data dir's router over its admin socket, one request per connection. Blocking, with timeouts.
public struct RouterClient: Sendable {
    public var socketPath: String
    public var timeout: Duration

    public init(socketPath: String, timeout: Duration = .seconds(5)) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    public init(dataDir: String, timeout: Duration = .seconds(5)) {
        self.init(socketPath: RouterPaths(dataDir: dataDir).socket, timeout: timeout)
    }

    /// The router's pid when one answers, nil otherwise.
    public func ping() -> Int32? {
        guard let response = try? send(AdminRequest(op: .ping)), response.ok else { return nil }
        return response.pid
    }

    public func set(app: String, route: AppRoute) throws {
        try check(send(AdminRequest(op: .set, app: app, route: route)))
    }

    public func remove(app: String) throws {
        try check(send(AdminRequest(op: .remove, app: app)))
    }

    public func mark(app: String, color: String, up: Bool) throws {
        try check(send(AdminRequest(op: .mark, app: app, color: color, up: up)))
    }

    public func routes() throws -> [String: AppRoute] {
        try check(send(AdminRequest(op: .routes))).routes ?? [:]
    }

    public func stats(app: String? = nil) throws -> [String: [String: UpstreamCounters]] {
        try check(send(AdminRequest(op: .stats, app: app))).stats ?? [:]
    }

    public func shutdown() throws {
        try check(send(AdminRequest(op: .shutdown)))
    }

    @discardableResult
    private func check(_ response: AdminResponse) throws -> AdminResponse {
        guard response.ok else { throw RouterError("router: \(response.error ?? "request failed")") }
        return response
    }

    /// Sends one request and reads one response line.
    public func send(_ request: AdminRequest) throws -> AdminResponse {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RouterError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout.components.seconds),
                         tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw RouterError("admin socket path too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw RouterError("no router at \(socketPath): \(String(cString: strerror(errno)))") }

        var payload = try JSONEncoder().encode(request)
        payload.append(UInt8(ascii: "\n"))
        try payload.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw RouterError("write to router: \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while !received.contains(UInt8(ascii: "\n")) {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw RouterError("the router closed the admin connection without answering") }
            received += chunk[0..<n]
        }
        let line = received.prefix { $0 != UInt8(ascii: "\n") }
        return try JSONDecoder().decode(AdminResponse.self, from: Data(line))
    }
}
