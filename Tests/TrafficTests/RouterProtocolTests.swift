import Foundation
import Testing
@testable import Traffic

/// HTTP/1.1 through the router process's proxy, byte for byte: framing, versions, and requests it must refuse.
@Suite(.serialized)
struct RouterProtocolTests {
    /// A router in a temp data dir routing app "shop" to one python upstream named "blue".
    private struct Setup {
        let dir: TempDir
        let blue: PythonUpstream
        let router: Router
        let listen: Int

        static func start(timeouts: RouterTimeouts = RouterTimeouts()) async throws -> Setup {
            let dir = try TempDir()
            let blue = try PythonUpstream.start(name: "blue", in: dir.path)
            let router = Router(dataDir: dir.path, timeouts: timeouts)
            try await router.start()
            let listen = freePort()
            try await router.set(app: "shop", route: AppRoute(
                listen: Endpoint(host: "127.0.0.1", port: listen), upstreams: ["blue": Upstream(port: blue.port)],
                weights: ["blue": 100]))
            return Setup(dir: dir, blue: blue, router: router, listen: listen)
        }

        func send(_ request: String) async throws -> String {
            let port = listen
            return try await blocking { try rawExchange(port: port, request) }
        }

        func requestsSeen() async -> Int {
            await router.counters(app: "shop")["shop"]?["blue"]?.requests ?? 0
        }

        func stop() async {
            await router.stop()
            blue.stop()
            dir.remove()
        }
    }

    private static let host = "Host: 127.0.0.1\r\n"

    @Test func passesChunkedBodiesBothWays() async throws {
        let setup = try await Setup.start()
        let upload = try await setup.send("POST /echo HTTP/1.1\r\n\(Self.host)Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + "4\r\nteal\r\n6;note=x\r\n, blue\r\n0\r\n\r\n")
        #expect(upload.hasPrefix("HTTP/1.1 200") && upload.hasSuffix("\r\n\r\nteal, blue"), "\(upload.debugDescription)")

        let chunked = try await setup.send("GET /chunked HTTP/1.1\r\n\(Self.host)Connection: close\r\n\r\n")
        #expect(chunked.lowercased().contains("transfer-encoding: chunked"), "\(chunked.debugDescription)")
        #expect(chunked.hasSuffix("5\r\nhello\r\n2\r\n, \r\n5\r\nworld\r\n0\r\nX-Checksum: 42\r\n\r\n"), "\(chunked.debugDescription)")

        let old = try await setup.send("GET /chunked HTTP/1.0\r\n\(Self.host)\r\n")
        #expect(old.hasPrefix("HTTP/1.0 200"), "\(old.debugDescription)")
        #expect(!old.lowercased().contains("transfer-encoding"), "\(old.debugDescription)")
        #expect(old.hasSuffix("\r\n\r\nhello, world"), "\(old.debugDescription)")
        await setup.stop()
    }

    @Test func keepsTheConnectionAcrossResponsesWithoutBodies() async throws {
        let setup = try await Setup.start()
        let answers = try await setup.send("HEAD / HTTP/1.1\r\n\(Self.host)\r\nGET /nocontent HTTP/1.1\r\n\(Self.host)\r\n"
            + "GET / HTTP/1.1\r\n\(Self.host)Connection: close\r\n\r\n")
        let statuses = answers.components(separatedBy: "\r\n").filter { $0.hasPrefix("HTTP/1.1 ") }
        #expect(statuses.map { $0.prefix(12) } == ["HTTP/1.1 200", "HTTP/1.1 204", "HTTP/1.1 200"], "\(answers.debugDescription)")
        #expect(answers.hasSuffix("\r\n\r\nblue"), "\(answers.debugDescription)")
        // The HEAD answer has the length of the body it does not carry; exactly one body came back.
        #expect(answers.components(separatedBy: "blue").count == 2, "\(answers.debugDescription)")
        await setup.stop()
    }

    @Test func endsABodyWithoutLengthWhenTheUpstreamCloses() async throws {
        let setup = try await Setup.start()
        // A keep-alive client: the router has to close, or this read would time out.
        let answer = try await setup.send("GET /close HTTP/1.1\r\n\(Self.host)\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.debugDescription)")
        #expect(answer.lowercased().contains("connection: close"), "\(answer.debugDescription)")
        #expect(answer.hasSuffix("\r\n\r\nuntil the end"), "\(answer.debugDescription)")
        await setup.stop()
    }

    @Test func answersExpectContinueItself() async throws {
        let setup = try await Setup.start()
        let answer = try await setup.send("POST /echo HTTP/1.1\r\n\(Self.host)Expect: 100-continue\r\nContent-Length: 4\r\n"
            + "Connection: close\r\n\r\nteal")
        #expect(answer.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"), "\(answer.debugDescription)")
        #expect(answer.hasSuffix("\r\n\r\nteal"), "\(answer.debugDescription)")
        await setup.stop()
    }

    @Test func dropsFieldsTheClientNamedAndExtendsForwardedFor() async throws {
        let setup = try await Setup.start()
        let answer = try await setup.send("GET /headers HTTP/1.1\r\n\(Self.host)Connection: close, X-Secret\r\nX-Secret: 1\r\n"
            + "X-Forwarded-For: 10.1.1.1\r\nX-Kept: yes\r\n\r\n")
        let json = try #require(answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) })
        let headers = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String] ?? [:]
        #expect(headers["x-secret"] == nil && headers["connection"] == nil, "\(headers)")
        #expect(headers["x-kept"] == "yes")
        #expect(headers["x-forwarded-for"] == "10.1.1.1, 127.0.0.1", "\(headers)")
        await setup.stop()
    }

    @Test func replacesForwardingFieldsFromAnUntrustedClient() async throws {
        let setup = try await Setup.start()
        let request = "GET /headers HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Proto: https\r\n"
            + "Forwarded: for=10.9.9.9\r\nConnection: close\r\n\r\n"
        func headers(_ answer: String) throws -> [String: String] {
            let json = try #require(answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) })
            return try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String] ?? [:]
        }
        // By default a proxy on loopback is trusted: its fields are kept and extended.
        let trusted = try headers(try await setup.send(request))
        #expect(trusted["x-forwarded-for"] == "10.9.9.9, 127.0.0.1", "\(trusted)")
        #expect(trusted["x-forwarded-proto"] == "https" && trusted["x-forwarded-host"] == "shop.example", "\(trusted)")
        #expect(trusted["forwarded"] == "for=10.9.9.9, for=127.0.0.1;host=shop.example;proto=http", "\(trusted)")

        var route = try #require(await setup.router.routes["shop"])
        route.trustedForwarders = ["10.0.0.0/8"]
        try await setup.router.set(app: "shop", route: route)
        let untrusted = try headers(try await setup.send(request))
        #expect(untrusted["x-forwarded-for"] == "127.0.0.1", "\(untrusted)")
        #expect(untrusted["x-forwarded-proto"] == "http" && untrusted["x-forwarded-host"] == "shop.example", "\(untrusted)")
        #expect(untrusted["forwarded"] == "for=127.0.0.1;host=shop.example;proto=http", "\(untrusted)")

        route.trustedForwarders = ["not an address"]
        await #expect(throws: RouterError.self) { try await setup.router.set(app: "shop", route: route) }
        await setup.stop()
    }

    @Test func aClientThatNamesContentLengthInConnectionIsRefused() async throws {
        let setup = try await Setup.start()
        let hidden = "GET /headers HTTP/1.1\r\nHost: a\r\n\r\n"
        let answer = try await setup.send("POST /echo HTTP/1.1\r\n\(Self.host)Connection: Content-Length, close\r\n"
            + "Content-Length: \(hidden.utf8.count)\r\n\r\n\(hidden)")
        #expect(answer.hasPrefix("HTTP/1.1 400") && answer.contains("Connection names"), "\(answer.debugDescription)")
        #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "\(answer.debugDescription)")
        #expect(await setup.requestsSeen() == 0)
        await setup.stop()
    }

    @Test func aHalfClosedClientGetsEveryAnswerItAskedFor() async throws {
        let setup = try await Setup.start()
        let answers = try await blocking { [listen = setup.listen] in
            try rawExchange(port: listen, "GET /headers HTTP/1.1\r\n\(Self.host)\r\nGET / HTTP/1.1\r\n\(Self.host)\r\n",
                            shutdownWrite: true)
        }
        #expect(answers.components(separatedBy: "HTTP/1.1 200").count == 3, "\(answers.debugDescription)")
        #expect(answers.hasSuffix("\r\n\r\nblue"), "\(answers.debugDescription)")
        await setup.stop()
    }

    @Test(arguments: [
        // Content-Length beside Transfer-Encoding: the classic way to hide a second request inside the first.
        ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /headers HTTP/1.1\r\nHost: a\r\n\r\n",
         "400", "both Transfer-Encoding and Content-Length"),
        ("GET / HTTP/1.1\nHost: a\n\n", "400", "CRLF"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "b", count: 70_000))\r\n\r\n", "431", "64 KiB"),
        ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400", "chunk size"),
    ])
    func refusesAmbiguousRequestsBeforeTheUpstreamSeesThem(request: String, status: String, reason: String) async throws {
        let setup = try await Setup.start()
        let answer = try await setup.send(request)
        #expect(answer.hasPrefix("HTTP/1.1 \(status)"), "\(answer.prefix(300).debugDescription)")
        #expect(answer.contains(reason), "\(answer.prefix(300).debugDescription)")
        #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer, then the connection closes")
        if status != "400" || !reason.contains("chunk") {
            #expect(await setup.requestsSeen() == 0)
        }
        await setup.stop()
    }

    @Test func timesOutSilentColorsSlowHeadsAndIdleClients() async throws {
        let setup = try await Setup.start(timeouts: RouterTimeouts(
            requestHead: .milliseconds(300), idleClient: .milliseconds(600), upstreamResponse: .milliseconds(400)))
        var started = Date()
        let slow = try await setup.send("GET /slow HTTP/1.1\r\n\(Self.host)Connection: close\r\n\r\n")
        #expect(slow.hasPrefix("HTTP/1.1 504"), "\(slow.debugDescription)")
        #expect(slow.contains("did not answer within 0.4 seconds"), "\(slow.debugDescription)")
        #expect(Date().timeIntervalSince(started) < 1.5)

        started = Date()
        let unfinished = try await setup.send("GET / HTTP/1.1\r\n\(Self.host)")
        #expect(unfinished.hasPrefix("HTTP/1.1 408"), "\(unfinished.debugDescription)")
        #expect(Date().timeIntervalSince(started) < 1.5)

        // A keep-alive client that goes quiet after its answer: the router closes, so the read ends.
        started = Date()
        let idle = try await setup.send("GET / HTTP/1.1\r\n\(Self.host)\r\n")
        let waited = Date().timeIntervalSince(started)
        #expect(idle.hasPrefix("HTTP/1.1 200") && idle.hasSuffix("blue"), "\(idle.debugDescription)")
        #expect(waited >= 0.5 && waited < 3, "closed after \(waited) s")

        // A body that stops coming: the exchange is cut once nothing moved for the upstream timeout.
        started = Date()
        let stalled = try await setup.send("POST /echo HTTP/1.1\r\n\(Self.host)Content-Length: 10\r\n\r\nabc")
        let stalledFor = Date().timeIntervalSince(started)
        #expect(!stalled.contains("HTTP/1.1 200"), "\(stalled.debugDescription)")
        #expect(stalledFor < 3, "closed after \(stalledFor) s")
        await setup.stop()
    }
}
