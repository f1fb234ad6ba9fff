import Foundation
import Synchronization

/// A fresh temporary folder, removed by `remove()`.
struct TempDir {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "teal-traffic-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

private let portsHandedOut = Mutex<Set<Int>>([])

/// A port nobody listens on right now, never one this process was handed before: two calls in a row can get
/// the same port from the kernel, and a "dead" upstream on the router's own listen port is a loop.
func freePort() -> Int {
    while true {
        let port = unusedPort()
        if portsHandedOut.withLock({ $0.insert(port).inserted }) { return port }
    }
}

private func unusedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs blocking work off the cooperative pool.
func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

/// A tiny HTTP/1.1 server in python3 that answers every GET with its name and echoes request headers under /headers.
struct PythonUpstream {
    let process: Process
    let port: Int

    static let script = """
    import http.server, os, sys, json, time
    seen = []
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            seen.append(self.command + " " + self.path)
            if self.path.startswith("/big?"):
                size = int(self.path[5:])
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                block = b"t" * (1 << 20)
                while size > 0:
                    self.wfile.write(block[:min(size, len(block))])
                    size -= len(block)
                return
            if self.path == "/seen":
                body = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if self.path == "/chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in [b"hello", b", ", b"world"]:
                    self.wfile.write(b"%x\\r\\n%s\\r\\n" % (len(part), part))
                    self.wfile.flush()
                self.wfile.write(b"0\\r\\nX-Checksum: 42\\r\\n\\r\\n")
                return
            if self.path == "/close":
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"until the end")
                self.close_connection = True
                return
            if self.path == "/slow":
                time.sleep(2)
            if self.path == "/nocontent":
                self.send_response(204)
                self.end_headers()
                return
            if self.path == "/headers":
                body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
            else:
                body = os.environ["NAME"].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Keep-Alive", "timeout=5")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        do_HEAD = do_GET
        def do_PUT(self):
            # What most apps on http.server do: the body is Content-Length bytes, nothing else is looked at.
            seen.append(self.command + " " + self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def do_POST(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\\r\\n", b""):
                            pass
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    class S(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128
    S(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    """

    static func start(name: String, in dir: String) throws -> PythonUpstream {
        let scriptPath = "\(dir)/upstream.py"
        if !FileManager.default.fileExists(atPath: scriptPath) {
            try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        }
        let port = freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [scriptPath]
        process.environment = ["PORT": String(port), "NAME": name, "PATH": "/usr/bin:/bin"]
        try process.run()
        let upstream = PythonUpstream(process: process, port: port)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? HTTPTestClient.get(port: port, path: "/"))?.status == 200 { return upstream }
            usleep(50_000)
        }
        upstream.stop()
        throw TestFailure("upstream \(name) did not start")
    }

    func stop() {
        let pid = process.processIdentifier
        kill(pid, SIGKILL)
        for _ in 0..<200 where kill(pid, 0) == 0 { usleep(10_000) }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A blocking HTTP/1.1 client for tests: one request per call, optionally over a kept-alive socket.
final class HTTPTestClient {
    let port: Int
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    init(port: Int) { self.port = port }

    deinit { disconnect() }

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    static func get(port: Int, path: String, timeout: Double = 5) throws -> Response {
        let client = HTTPTestClient(port: port)
        return try client.request(path: path, keepAlive: false, timeout: timeout)
    }

    func disconnect() {
        if fd >= 0 { close(fd) }
        fd = -1
        buffer.removeAll()
    }

    func request(path: String, method: String = "GET", body: String? = nil, keepAlive: Bool, timeout: Double = 5) throws -> Response {
        if fd < 0 { try connectSocket(timeout: timeout) }
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        if !keepAlive { text += "Connection: close\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        let bytes = Array(text.utf8)
        let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else {
            disconnect()
            throw TestFailure("send failed")
        }
        let response = try readResponse()
        if !keepAlive || response.headers["connection"]?.lowercased() == "close" { disconnect() }
        return response
    }

    private func connectSocket(timeout: Double) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            disconnect()
            throw TestFailure("connect to \(port) failed: errno \(errno)")
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 16384)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else {
            disconnect()
            throw TestFailure("connection closed or timed out")
        }
        buffer += chunk[0..<n]
    }

    private func readResponse() throws -> Response {
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            if buffer.count >= 4 {
                headEnd = (0...(buffer.count - 4)).first { buffer[$0..<$0 + 4].elementsEqual(separator) }
            }
            if headEnd == nil { try fill() }
        }
        let headText = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw TestFailure("bad status line") }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body: [UInt8] = []
        if let length = headers["content-length"].flatMap(Int.init) {
            while buffer.count < length { try fill() }
            body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        } else if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                var lineEnd: Int?
                while lineEnd == nil {
                    lineEnd = buffer.count >= 2 ? (0...(buffer.count - 2)).first { buffer[$0] == 13 && buffer[$0 + 1] == 10 } : nil
                    if lineEnd == nil { try fill() }
                }
                let size = Int(String(decoding: buffer[0..<lineEnd!], as: UTF8.self), radix: 16) ?? 0
                buffer.removeFirst(lineEnd! + 2)
                while buffer.count < size + 2 { try fill() }
                body += buffer[0..<size]
                buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
        }
        return Response(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
    }
}

/// Counts outcomes of a load run.
final class LoadTally: Sendable {
    let ok = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let byBody = Mutex<[String: Int]>([:])
    let errors = Mutex<[String]>([])

    func record(_ result: Result<HTTPTestClient.Response, any Error>) {
        switch result {
        case .success(let response) where response.status == 200:
            ok.add(1, ordering: .relaxed)
            byBody.withLock { $0[response.body, default: 0] += 1 }
        case .success(let response):
            failed.add(1, ordering: .relaxed)
            errors.withLock { if $0.count < 10 { $0.append("status \(response.status): \(response.body)") } }
        case .failure(let error):
            failed.add(1, ordering: .relaxed)
            errors.withLock { if $0.count < 10 { $0.append("\(error)") } }
        }
    }
}

/// Drives `connections` client threads against `port` for `duration` seconds; half of them keep connections alive.
func runLoad(port: Int, connections: Int, duration: Double, tally: LoadTally) async {
    let deadline = Date().addingTimeInterval(duration)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let remaining = Mutex(connections)
        for index in 0..<connections {
            Thread.detachNewThread {
                let keepAlive = index % 2 == 0
                let client = HTTPTestClient(port: port)
                var count = 0
                while Date() < deadline && count < 100_000 {
                    tally.record(Result { try client.request(path: "/", keepAlive: keepAlive) })
                    count += 1
                }
                client.disconnect()
                if remaining.withLock({ $0 -= 1; return $0 }) == 0 { continuation.resume() }
            }
        }
    }
}
