import Foundation
import Testing
@testable import Traffic

/// Request bodies through the router to a color that records every byte it gets: what is refused never reaches
/// it, what is forwarded is framed so that an app reading `Content-Length` only cannot be fooled.
@Suite(.serialized)
struct RouterStrictnessTests {
    /// A router in a temp data dir routing app "shop" to a recording color.
    struct Setup {
        let dir: TempDir
        let color: RecordingUpstream
        let router: Router
        let listen: Int

        static func start(limits: RouterLimits = RouterLimits()) async throws -> Setup {
            let dir = try TempDir()
            let color = try RecordingUpstream()
            let router = Router(dataDir: dir.path, limits: limits)
            try await router.start()
            let listen = freePort()
            try await router.set(app: "shop", route: AppRoute(
                listen: Endpoint(host: "127.0.0.1", port: listen), upstreams: ["blue": Upstream(port: color.port)],
                weights: ["blue": 100]))
            return Setup(dir: dir, color: color, router: router, listen: listen)
        }

        func send(_ request: String) async throws -> String {
            let port = listen
            return try await blocking { try rawExchange(port: port, request) }
        }

        /// Sends the head, waits until a router that forwards heads at once would have done so, then the body.
        func send(head: String, body: String) async throws -> String {
            let port = listen
            return try await blocking { () -> String in
                let fd = try connectTo(port: port)
                defer { close(fd) }
                for (index, part) in [head, body].enumerated() {
                    if index > 0 { usleep(200_000) }
                    let bytes = Array(part.utf8)
                    _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                }
                var received: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 16384)
                while true {
                    let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    guard count > 0 else { break }
                    received += chunk[0..<count]
                }
                return String(decoding: received, as: UTF8.self)
            }
        }

        /// What the color received, once the router had time to connect if it was going to.
        func received() async throws -> String {
            try await Task.sleep(for: .milliseconds(250))
            return color.received
        }

        func stop() async {
            await router.stop()
            color.stop()
            dir.remove()
        }
    }

    private static let chunkedHead = "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

    @Test(arguments: [
        ("4 5\r\nteal\r\n0\r\n\r\n", "chunk size"),
        ("4 teal\r\nteal\r\n0\r\n\r\n", "chunk size"),
        ("4;\r\nteal\r\n0\r\n\r\n", "chunk extension"),
        ("4;a=\"open\r\nteal\r\n0\r\n\r\n", "chunk extension"),
        ("4;a=b c\r\nteal\r\n0\r\n\r\n", "chunk size line"),
        ("4;a=(b)\r\nteal\r\n0\r\n\r\n", "chunk extension"),
        ("4\r\nteal\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", "chunk size"),
        // 2^64 + 4: a parser that lets the size wrap around reads a chunk of 4 bytes.
        ("10000000000000004\r\nteal\r\n0\r\n\r\n", "too large"),
        ("4\r\nteal\r\n0\r\nGET /smuggled HTTP/1.1\r\n\r\n", "trailer"),
        ("4\r\nteal\r\n0\r\nX-Sum : 1\r\n\r\n", "trailer"),
        ("4\r\nteal\r\n0\r\nX-Sum: 1\r\n folded\r\n\r\n", "trailer"),
        ("4\r\nteal\r\n0\r\nX-Sum: a\u{01}b\r\n\r\n", "trailer"),
        ("4\r\nteal\r\n0\r\nContent-Length: 5\r\n\r\n", "trailer"),
    ])
    func refusesMalformedChunkedBodiesBeforeTheColorSeesAByte(body: String, reason: String) async throws {
        let setup = try await Setup.start()
        let answer = try await setup.send(head: Self.chunkedHead, body: body)
        #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer.prefix(300).debugDescription)")
        #expect(answer.contains(reason), "\(answer.prefix(300).debugDescription)")
        #expect(try await setup.received() == "", "the color received something")
        #expect(setup.color.connections.isEmpty, "the router connected to the color")
        await setup.stop()
    }

    @Test(arguments: [
        ("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "400",
         "more than one Transfer-Encoding"),
        ("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "400", "more than once"),
        ("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501", "other than chunked"),
        ("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x\r\n\r\n", "400", "chunked last"),
        ("POST /upload HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "400", "HTTP/1.0"),
        ("POST /upload HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 13\r\n\r\n", "400", "Connection names"),
        ("POST /upload HTTP/1.1\r\nHost: a\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n", "400",
         "Connection names"),
        ("POST /upload HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Host\r\nContent-Length: 13\r\n\r\n", "400", "Connection names"),
    ])
    func refusesTransferCodingsAndConnectionFieldsThatChangeTheFraming(head: String, status: String, reason: String) async throws {
        let setup = try await Setup.start()
        let body = head.contains("chunked") ? "4\r\nteal\r\n0\r\n\r\n" : "teal and blue"
        let answer = try await setup.send(head + body)
        #expect(answer.hasPrefix("HTTP/1.1 \(status)"), "\(answer.prefix(300).debugDescription)")
        #expect(answer.contains(reason), "\(answer.prefix(300).debugDescription)")
        #expect(answer.components(separatedBy: "Content-Length:").count == 2, "one answer, then the connection closes")
        #expect(try await setup.received() == "", "the color received something")
        await setup.stop()
    }

    @Test func aChunkedBodyReachesTheColorWholeWithItsLength() async throws {
        let setup = try await Setup.start()
        let answer = try await setup.send(Self.chunkedHead + "4;note=\"a \\\"b\\\"\"\r\nteal\r\n6 ; x = y\r\n, blue\r\n0\r\nX-Sum: 1\r\n\r\n"
            + "GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 200") && answer.hasSuffix("\r\n\r\n0"), "\(answer.debugDescription)")
        #expect(answer.contains("\r\n\r\n10HTTP/1.1 200"), "\(answer.debugDescription)")
        let connections = setup.color.connections
        let heads = connections.flatMap(\.heads)
        #expect(heads.count == 2, "\(heads)")
        #expect(heads.first?.contains("Content-Length: 10") == true && heads.first?.contains("Transfer-Encoding") == false,
                "\(heads)")
        #expect(connections.flatMap(\.bodies).first.map { String(decoding: $0, as: UTF8.self) } == "teal, blue")
        #expect(heads.last?.hasPrefix("GET /next HTTP/1.1") == true, "\(heads)")
        await setup.stop()
    }

    @Test func aLongChunkedBodyStreamsChunkedAndTheColorConnectionIsNotReused() async throws {
        let setup = try await Setup.start(limits: RouterLimits(maxCollectedChunkedBody: 1000))
        let chunk = String(repeating: "b", count: 500)
        var body = ""
        for _ in 0..<10 { body += "1f4\r\n\(chunk)\r\n" }
        body += "0\r\n\r\n"
        let answer = try await setup.send(Self.chunkedHead + body + "GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(answer.components(separatedBy: "HTTP/1.1 200").count == 3, "\(answer.debugDescription)")
        let connections = setup.color.connections
        #expect(connections.count == 2, "the streamed request's connection was reused")
        let first = String(decoding: connections.first?.bytes ?? [], as: UTF8.self)
        #expect(first.contains("Transfer-Encoding: chunked\r\n") && first.contains("Connection: close\r\n"), "\(first.prefix(300))")
        await setup.stop()
    }

    @Test func anAppOnPythonsHTTPServerGetsAChunkedBodyWhole() async throws {
        let dir = try TempDir()
        let color = try PythonUpstream.start(name: "blue", in: dir.path)
        let router = Router(dataDir: dir.path)
        try await router.start()
        let listen = freePort()
        try await router.set(app: "shop", route: AppRoute(
            listen: Endpoint(host: "127.0.0.1", port: listen), upstreams: ["blue": Upstream(port: color.port)], weights: ["blue": 100]))
        // A body that is itself a request: an app that ignored the chunked framing would run it.
        let hidden = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
        let size = String(hidden.utf8.count, radix: 16)
        let answer = try await blocking {
            try rawExchange(port: listen, "PUT /notes HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\n\(hidden)\r\n0\r\n\r\n"
                + "GET /seen HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        }
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.debugDescription)")
        #expect(answer.contains("\r\n\r\n\(hidden)HTTP/1.1 200"), "\(answer.debugDescription)")
        #expect(!answer.contains("\"GET /smuggled\""), "\(answer.debugDescription)")
        await router.stop()
        color.stop()
        dir.remove()
    }

    @Test func aClientThatGoesAwayMidUploadReleasesItsColorConnectionAtOnce() async throws {
        let setup = try await Setup.start()
        let port = setup.listen
        let color = setup.color
        let closedAfter = try await blocking { () -> Double in
            let fd = try connectTo(port: port)
            let head = "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n" + String(repeating: "u", count: 1000)
            _ = Array(head.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            let deadline = Date().addingTimeInterval(3)
            while Date() < deadline && (color.connections.first?.total ?? 0) < 1000 { usleep(10_000) }
            close(fd)
            let gone = Date()
            while Date() < gone.addingTimeInterval(5) {
                if let closed = color.connections.first?.closedAt { return closed.timeIntervalSince(gone) }
                usleep(10_000)
            }
            return .infinity
        }
        #expect(setup.color.connections.first?.total ?? 0 >= 1000)
        #expect(closedAfter < 1, "the color connection was released after \(closedAfter) s")
        await setup.stop()
    }

    @Test func limitsClientConnectionsWith503AndRaisesItsFileLimit() async throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur == limit.rlim_max && limit.rlim_max > 1024 {
            var lowered = limit
            lowered.rlim_cur = limit.rlim_max - 1
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered)
        }
        let setup = try await Setup.start(limits: RouterLimits(maxClientConnections: 3))
        var raised = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised)
        #expect(raised.rlim_cur == raised.rlim_max)

        let port = setup.listen
        // Three keep-alive clients, each after one answer.
        let clients = try await blocking { () -> [Int32] in
            try (0..<3).map { _ in
                let fd = try connectTo(port: port)
                #expect(try exchangeOnce(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").hasPrefix("HTTP/1.1 200"))
                return fd
            }
        }
        let refused = try await blocking { try rawExchange(port: port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") }
        #expect(refused.hasPrefix("HTTP/1.1 503"), "\(refused.debugDescription)")
        #expect(refused.contains("too many connections"), "\(refused.debugDescription)")
        close(clients[0])
        let deadline = Date().addingTimeInterval(3)
        while await setup.router.openClientConnections > 2 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let admitted = try await blocking { try rawExchange(port: port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") }
        #expect(admitted.hasPrefix("HTTP/1.1 200"), "\(admitted.debugDescription)")
        for fd in clients.dropFirst() { close(fd) }
        await setup.stop()
    }
}

/// A connected blocking socket to 127.0.0.1:`port`, with a 5 s receive timeout.
func connectTo(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw TestFailure("connect to \(port) failed: errno \(errno)")
    }
    return fd
}

/// Sends `request` on a connected socket and returns what the first read brings back.
func exchangeOnce(_ fd: Int32, _ request: String) throws -> String {
    let bytes = Array(request.utf8)
    guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
        throw TestFailure("send failed")
    }
    var chunk = [UInt8](repeating: 0, count: 65536)
    let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    guard count > 0 else { throw TestFailure("no answer") }
    return String(decoding: chunk[0..<count], as: UTF8.self)
}
