import Foundation
import Testing
@testable import Traffic

@Suite(.serialized)
struct RouterTests {
    private func route(listen: Int, _ upstreams: [String: Int], live: String?) -> AppRoute {
        AppRoute(listen: Endpoint(host: "127.0.0.1", port: listen),
                 upstreams: upstreams.mapValues { Upstream(port: $0) },
                 weights: live.map { [$0: 100] } ?? [:])
    }

    @Test func switchesTwentyTimesUnderLoadWithoutAFailedRequest() async throws {
        let dir = try TempDir()
        let blue = try PythonUpstream.start(name: "blue", in: dir.path)
        let green = try PythonUpstream.start(name: "green", in: dir.path)
        let router = Router(dataDir: dir.path)
        defer { blue.stop(); green.stop(); dir.remove() }
        try await router.start()
        let listen = freePort()
        let upstreams = ["blue": blue.port, "green": green.port]
        let client = RouterClient(dataDir: dir.path)
        try await blocking { try client.set(app: "shop", route: route(listen: listen, upstreams, live: "blue")) }

        let tally = LoadTally()
        async let load: Void = runLoad(port: listen, connections: 8, duration: 4, tally: tally)
        try await Task.sleep(for: .milliseconds(200))
        for index in 0..<20 {
            let live = index % 2 == 0 ? "green" : "blue"
            try await blocking { try client.set(app: "shop", route: route(listen: listen, upstreams, live: live)) }
            try await Task.sleep(for: .milliseconds(150))
        }
        await load
        let counts = try await blocking { try client.stats(app: "shop") }
        await router.stop()

        let errors = tally.errors.withLock { $0 }
        #expect(tally.failed.load(ordering: .relaxed) == 0, "failures: \(errors)")
        #expect(tally.ok.load(ordering: .relaxed) > 200)
        let seen = tally.byBody.withLock { $0 }
        #expect((seen["blue"] ?? 0) > 0 && (seen["green"] ?? 0) > 0, "\(seen)")
        #expect(counts["shop"]?["blue"]?.inFlight == 0)
        #expect(counts["shop"]?["green"]?.inFlight == 0)
    }

    @Test func answers503WithoutARouteAnd502WhenTheColorIsGone() async throws {
        let dir = try TempDir()
        let router = Router(dataDir: dir.path)
        defer { dir.remove() }
        try await router.start()
        let listen = freePort()
        let deadPort = freePort()
        try await router.set(app: "shop", route: route(listen: listen, ["blue": deadPort], live: nil))
        let started = Date()
        let noRoute = try await blocking { try HTTPTestClient.get(port: listen, path: "/") }
        #expect(noRoute.status == 503)
        try await router.set(app: "shop", route: route(listen: listen, ["blue": deadPort], live: "blue"))
        let gone = try await blocking { try HTTPTestClient.get(port: listen, path: "/") }
        #expect(gone.status == 502)
        try await router.mark(app: "shop", color: "blue", up: false)
        let down = try await blocking { try HTTPTestClient.get(port: listen, path: "/") }
        #expect(down.status == 503)
        #expect(Date().timeIntervalSince(started) < 2)
        await router.stop()
    }

    @Test func refusesAnUpstreamThatIsItsOwnListenAddress() async throws {
        let dir = try TempDir()
        let router = Router(dataDir: dir.path)
        defer { dir.remove() }
        try await router.start()
        let listen = freePort()
        let other = freePort()
        try await router.set(app: "shop", route: route(listen: listen, ["blue": freePort()], live: "blue"))
        let looped = await #expect(throws: RouterError.self) {
            try await router.set(app: "shop", route: route(listen: listen, ["green": listen], live: "green"))
        }
        #expect(looped?.description.contains("upstream green of shop is 127.0.0.1:\(listen)") == true, "\(String(describing: looped))")
        let wildcard = AppRoute(listen: Endpoint(host: "0.0.0.0", port: other), upstreams: ["blue": Upstream(host: "localhost", port: other)],
                                weights: ["blue": 100])
        await #expect(throws: RouterError.self) { try await router.set(app: "cart", route: wildcard) }
        let intoShop = route(listen: other, ["blue": listen], live: "blue")
        await #expect(throws: RouterError.self) { try await router.set(app: "cart", route: intoShop) }
        let served = try await blocking { try HTTPTestClient.get(port: listen, path: "/") }
        #expect(served.status == 502, "the route before the refused one keeps serving")
        await router.stop()
    }

    @Test func forwardsHeadersAndBodiesAndRestoresRoutesAfterRestart() async throws {
        let dir = try TempDir()
        let blue = try PythonUpstream.start(name: "blue", in: dir.path)
        defer { blue.stop(); dir.remove() }
        let listen = freePort()
        do {
            let router = Router(dataDir: dir.path)
            try await router.start()
            try await router.set(app: "shop", route: route(listen: listen, ["blue": blue.port], live: "blue"))
            let second = Router(dataDir: dir.path)
            await #expect(throws: RouterError.self) { try await second.start() }
            await router.stop()
        }
        let router = Router(dataDir: dir.path)
        try await router.start()
        #expect(await router.routes["shop"]?.weights == ["blue": 100])

        let echoed = try await blocking { () -> HTTPTestClient.Response in
            let client = HTTPTestClient(port: listen)
            return try client.request(path: "/headers", keepAlive: false)
        }
        #expect(echoed.status == 200)
        let headers = try JSONSerialization.jsonObject(with: Data(echoed.body.utf8)) as? [String: String] ?? [:]
        #expect(headers["x-forwarded-for"] == "127.0.0.1")
        #expect(headers["connection"] == nil)
        #expect(echoed.headers["keep-alive"] == nil)

        let payload = String(repeating: "teal", count: 50_000)
        let posted = try await blocking {
            try HTTPTestClient(port: listen).request(path: "/echo", method: "POST", body: payload, keepAlive: false)
        }
        #expect(posted.body == payload)
        await router.stop()
    }

    @Test func answersPipelinedRequestsInOrderAndAHalfClosedClient() async throws {
        let dir = try TempDir()
        let blue = try PythonUpstream.start(name: "blue", in: dir.path)
        let router = Router(dataDir: dir.path)
        defer { blue.stop(); dir.remove() }
        try await router.start()
        let listen = freePort()
        try await router.set(app: "shop", route: route(listen: listen, ["blue": blue.port], live: "blue"))

        let host = "Host: 127.0.0.1\r\n"
        let pipelined = try await blocking {
            try rawExchange(port: listen, "GET /headers HTTP/1.1\r\n\(host)\r\nGET / HTTP/1.1\r\n\(host)Connection: close\r\n\r\n")
        }
        #expect(pipelined.components(separatedBy: "HTTP/1.1 200").count == 3, "\(pipelined)")
        let headersAt = try #require(pipelined.range(of: "x-forwarded-for"))
        let blueAt = try #require(pipelined.range(of: "\r\n\r\nblue", options: .backwards))
        #expect(headersAt.lowerBound < blueAt.lowerBound, "responses out of order: \(pipelined)")

        let halfClosed = try await blocking {
            try rawExchange(port: listen, "GET / HTTP/1.1\r\n\(host)\r\n", shutdownWrite: true)
        }
        #expect(halfClosed.hasPrefix("HTTP/1.1 200") && halfClosed.hasSuffix("blue"), "\(halfClosed)")
        #expect(await router.counters(app: "shop")["shop"]?["blue"]?.inFlight == 0)
        await router.stop()
    }
}

/// Sends `request` bytes as they are (optionally shutting the sending side), then reads until the router closes.
func rawExchange(port: Int, _ request: String, shutdownWrite: Bool = false) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw TestFailure("connect to \(port) failed: errno \(errno)") }
    let bytes = Array(request.utf8)
    guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
        throw TestFailure("send failed")
    }
    if shutdownWrite { shutdown(fd, Int32(SHUT_WR)) }
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count == 0 { break }
        guard count > 0 else { throw TestFailure("no end of stream; read so far: \(String(decoding: received, as: UTF8.self))") }
        received += chunk[0..<count]
    }
    return String(decoding: received, as: UTF8.self)
}
