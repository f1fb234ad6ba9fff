import NIOCore
import Testing
@testable import Traffic

/// The router's HTTP/1.1 reading and writing, without sockets.
struct HTTPHeadTests {
    private func request(_ text: String) -> HeadParser.Outcome<RequestHead> {
        var fields: [HeadField] = []
        return Array(text.utf8).withUnsafeBytes { HeadParser.request($0, fields: &fields) }
    }

    private func response(_ text: String) -> HeadParser.Outcome<ResponseHead> {
        var fields: [HeadField] = []
        return Array(text.utf8).withUnsafeBytes { HeadParser.response($0, fields: &fields) }
    }

    private func requestHead(_ text: String) throws -> RequestHead {
        guard case .complete(let head) = request(text) else { throw TestFailure("not a complete head: \(request(text))") }
        return head
    }

    @Test func readsARequestHeadAndItsFraming() throws {
        let text = "\r\nPOST /orders?x=1 HTTP/1.1\r\nHost: shop\r\nContent-Length: 12\r\n\r\nhello, world"
        let head = try requestHead(text)
        let bytes = Array(text.utf8)
        #expect(String(decoding: bytes[head.method], as: UTF8.self) == "POST")
        #expect(String(decoding: bytes[head.target], as: UTF8.self) == "/orders?x=1")
        #expect(head.minorVersion == 1 && head.keepAlive && head.hasHost && !head.isHEAD)
        #expect(head.body == .length(12))
        #expect(head.length == text.utf8.count - 12)

        #expect(try requestHead("GET / HTTP/1.0\r\n\r\n").keepAlive == false)
        #expect(try requestHead("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive == true)
        #expect(try requestHead("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keepAlive == false)
        #expect(try requestHead("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").isHEAD)
        #expect(try requestHead("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n").body == .chunked)
        #expect(try requestHead("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n").isUpgrade)
        #expect(try !requestHead("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").isUpgrade)
        #expect(try !requestHead("GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n").isUpgrade)
        #expect(try requestHead("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n").expectsContinue)
        #expect(try requestHead("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret\r\n\r\n").connectionNamesFields)
        // Only requests safe to repeat are sent again when a kept-alive connection breaks under them.
        #expect(try requestHead("GET / HTTP/1.1\r\nHost: a\r\n\r\n").isIdempotent)
        #expect(try requestHead("DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n").isIdempotent)
        #expect(try !requestHead("POST / HTTP/1.1\r\nHost: a\r\n\r\n").isIdempotent)
        #expect(try !requestHead("PATCH / HTTP/1.1\r\nHost: a\r\n\r\n").isIdempotent)
    }

    @Test func waitsForTheWholeHeadAtEverySplit() throws {
        let text = "GET /a HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\n\r\n"
        for cut in 0..<text.utf8.count {
            let prefix = String(decoding: Array(text.utf8)[0..<cut], as: UTF8.self)
            guard case .incomplete = request(prefix) else {
                Issue.record("\(cut) bytes should be incomplete, got \(request(prefix))")
                continue
            }
        }
        #expect(try requestHead(text).length == text.utf8.count)

        // The same head arriving a byte at a time, the search resuming where it stopped.
        let bytes = Array(text.utf8)
        var fields: [HeadField] = []
        var resume = 0
        for cut in 1..<bytes.count {
            let outcome = bytes[0..<cut].withUnsafeBytes { HeadParser.request($0, fields: &fields, resume: &resume) }
            guard case .incomplete = outcome else {
                Issue.record("\(cut) bytes with resume \(resume): \(outcome)")
                break
            }
        }
        let whole = bytes.withUnsafeBytes { HeadParser.request($0, fields: &fields, resume: &resume) }
        guard case .complete(let head) = whole else { throw TestFailure("not complete: \(whole)") }
        #expect(head == (try requestHead(text)))
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "CRLF"),
        ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, "folded"),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "field name"),
        ("GET / HTTP/1.1\r\n: a\r\n\r\n", 400, "field name"),
        ("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both"),
        ("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400, "conflicting"),
        ("POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n", 400, "Content-Length"),
        ("POST / HTTP/1.1\r\nContent-Length: 3 3\r\n\r\n", 400, "Content-Length"),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, "chunked last"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "other than chunked"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "more than one"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400, "more than once"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400, "chunked last"),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"),
        ("POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 4\r\n\r\n", 400, "Connection names"),
        ("POST / HTTP/1.1\r\nHost: a\r\nConnection: close, transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
         "Connection names"),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: HOST\r\n\r\n", 400, "Connection names"),
        ("GET / HTTP/2.0\r\n\r\n", 505, "HTTP/1.0"),
        ("GET / HTTP/1.1\r\nX: a\u{01}b\r\n\r\n", 400, "control character"),
        ("GET  / HTTP/1.1\r\n\r\n", 400, "request line"),
        ("GET /\r\n\r\n", 400, "request line"),
        ("G(T / HTTP/1.1\r\n\r\n", 400, "request line"),
        // A CR without LF is a line end to some parsers and a space to others.
        ("POST / HTTP/1.1\r\nHost: a\r\nX: y\rZContent-Length: 4\r\n\r\n", 400, "CR without LF"),
        ("POST / HTTP/1.1\r\nHost: a\r\nX: y\rContent-Length: 4\r\n\r\n", 400, "CR without LF"),
        ("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, "without Host"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host"),
    ])
    func refusesAmbiguousOrMalformedRequests(text: String, status: Int, reason: String) {
        guard case .failed(let error) = request(text) else {
            Issue.record("accepted: \(text.debugDescription) -> \(request(text))")
            return
        }
        #expect(error.status == status)
        #expect(error.reason.contains(reason), "\(error.reason)")
    }

    @Test func refusesAHeadLargerThanTheLimit() {
        let big = "GET / HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: HeadParser.maxHeadBytes))\r\n\r\n"
        guard case .failed(let error) = request(big) else {
            Issue.record("accepted a head of \(big.utf8.count) bytes")
            return
        }
        #expect(error.status == 431)
        // An unfinished head is refused as soon as it passes the limit, not when it ends.
        guard case .failed(let early) = request(String(big.prefix(HeadParser.maxHeadBytes + 100))) else {
            Issue.record("an unfinished head over the limit was not refused")
            return
        }
        #expect(early.status == 431)
        // Empty lines before a head count too: an endless run of them is refused, not buffered.
        guard case .failed(let blank) = request(String(repeating: "\r\n", count: HeadParser.maxHeadBytes / 2 + 1)) else {
            Issue.record("an endless run of empty lines was not refused")
            return
        }
        #expect(blank.status == 431)
    }

    @Test func decidesHowAResponseBodyEnds() throws {
        func framing(_ text: String, head: Bool = false) throws -> BodyFraming {
            guard case .complete(let parsed) = response(text) else { throw TestFailure("not parsed: \(text)") }
            return parsed.framing(requestWasHEAD: head)
        }
        #expect(try framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n") == .length(5))
        #expect(try framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", head: true) == .none)
        #expect(try framing("HTTP/1.1 204 No Content\r\n\r\n") == .none)
        #expect(try framing("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n") == .none)
        #expect(try framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n") == .chunked)
        #expect(try framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n") == .untilClose)
        #expect(try framing("HTTP/1.0 200 OK\r\n\r\n") == .untilClose)
        #expect(try framing("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n") == .none)
        guard case .complete(let closing) = response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n"),
              case .complete(let old) = response("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n")
        else { throw TestFailure("not parsed") }
        #expect(!closing.keepAlive && old.keepAlive)
        guard case .failed(let error) = response("HTTP/1.1 2OO OK\r\n\r\n") else { throw TestFailure("bad status accepted") }
        #expect(error.status == 502)
    }

    @Test func findsTheEndOfAChunkedBodyAtEverySplit() throws {
        let body = "5;name=value; q = \"a \\\"b\\\"\" \r\nhello\r\n7 ;x\r\n, world\r\n0\r\nExpires: never\r\n\r\n"
        let after = "GET /next HTTP/1.1\r\n\r\n"
        let bytes = Array((body + after).utf8)
        for cut in 0...bytes.count {
            var scanner = ChunkedBodyScanner()
            var data: [UInt8] = []
            var consumed = 0
            for part in [Array(bytes[0..<cut]), Array(bytes[cut...])] where !scanner.isDone {
                let used = try part.withUnsafeBytes { raw in
                    try scanner.scan(raw) { range in data += part[range] }
                }
                consumed += used
            }
            #expect(scanner.isDone, "split at \(cut)")
            #expect(consumed == body.utf8.count, "split at \(cut)")
            #expect(String(decoding: data, as: UTF8.self) == "hello, world", "split at \(cut)")
        }
    }

    @Test(arguments: ["x\r\n", "5 5\r\n", "5 x\r\n", "5;\r\n", "5;a=\r\n", "5;a=\"b\r\n", "5;a b\r\n", "5;a=b=c\r\n",
                      "0\r\nGET / HTTP/1.1\r\n\r\n", "0\r\nX : y\r\n\r\n", "0\r\nContent-Length: 1\r\n\r\n",
                      "10000000000000005\r\n", "5\r\nhello!\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5\nhello\r\n", "\r\n",
                      "fffffffffffffffff\r\n", "0\r\nTrailer: x\n\r\n"])
    func refusesMalformedChunkedBodies(body: String) {
        var scanner = ChunkedBodyScanner()
        #expect(throws: HeadError.self, "\(body.debugDescription)") {
            _ = try Array(body.utf8).withUnsafeBytes { try scanner.scan($0) }
        }
    }

    @Test func writesTheUpstreamHeadWithoutHopByHopFields() throws {
        let text = "POST /p HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n"
            + "X-Forwarded-For: 10.0.0.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nTE: trailers\r\n"
            + "Upgrade: websocket\r\nAccept: */*\r\n\r\n"
        var fields: [HeadField] = []
        let bytes = Array(text.utf8)
        let outcome = bytes.withUnsafeBytes { HeadParser.request($0, fields: &fields) }
        guard case .complete(let head) = outcome else { throw TestFailure("not parsed: \(outcome)") }
        func write(leaveOpen: Bool) -> String {
            var out = ByteBuffer()
            bytes.withUnsafeBytes {
                HeadWriter.upstreamRequest(head, bytes: $0, fields: fields, client: ForwardedClient("127.0.0.2"), host: "", leaveOpen: leaveOpen,
                                           into: &out)
            }
            return String(buffer: out)
        }
        // `Upgrade` without `Connection: upgrade` is not an upgrade: dropped like the other hop-by-hop fields.
        let forwarding = "X-Forwarded-For: 10.0.0.1, 127.0.0.2\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n"
            + "Forwarded: for=127.0.0.2;host=h;proto=http\r\n"
        #expect(write(leaveOpen: false) == "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nAccept: */*\r\n"
            + forwarding + "\r\n")
        // Left open for the framing the router picks once it has the body.
        #expect(write(leaveOpen: true) == "POST /p HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n" + forwarding)

        // An HTTP/1.0 client without Host gets one; an upgrade keeps `Upgrade` and says `Connection: upgrade`.
        let upgrade = Array("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n".utf8)
        guard case .complete(let upgradeHead) = upgrade.withUnsafeBytes({ HeadParser.request($0, fields: &fields) }) else {
            throw TestFailure("not parsed")
        }
        var upgradeOut = ByteBuffer()
        upgrade.withUnsafeBytes {
            HeadWriter.upstreamRequest(upgradeHead, bytes: $0, fields: fields, client: nil, host: "", upgrade: true, into: &upgradeOut)
        }
        #expect(String(buffer: upgradeOut)
            == "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nX-Forwarded-Proto: http\r\n"
            + "X-Forwarded-Host: a\r\nForwarded: host=a;proto=http\r\nConnection: upgrade\r\n\r\n")
        let old = Array("GET / HTTP/1.0\r\n\r\n".utf8)
        guard case .complete(let oldHead) = old.withUnsafeBytes({ HeadParser.request($0, fields: &fields) }) else {
            throw TestFailure("not parsed")
        }
        var oldOut = ByteBuffer()
        old.withUnsafeBytes {
            HeadWriter.upstreamRequest(oldHead, bytes: $0, fields: fields, client: nil, host: "127.0.0.1:9000", into: &oldOut)
        }
        #expect(String(buffer: oldOut) == "GET / HTTP/1.1\r\nX-Forwarded-Proto: http\r\nForwarded: proto=http\r\nHost: 127.0.0.1:9000\r\n\r\n")
    }

    @Test func aHeadLongerThanItsRoomIsWrittenAgainWithMore() throws {
        // The Host value appears three times in what goes upstream (Host, X-Forwarded-Host, Forwarded): far more than
        // the room reserved for the forwarding fields, so the first attempt overflows.
        let longHost = String(repeating: "a", count: 3000) + ".example:8080"
        let text = "GET / HTTP/1.1\r\nHost: \(longHost)\r\n\r\n"
        var fields: [HeadField] = []
        let bytes = Array(text.utf8)
        guard case .complete(let head) = bytes.withUnsafeBytes({ HeadParser.request($0, fields: &fields) }) else {
            throw TestFailure("not parsed")
        }
        #expect(HeadWriter.upstreamRequestRoom(head, client: nil, host: "") < 2 * bytes.count)
        var out = ByteBuffer(string: "kept:")
        bytes.withUnsafeBytes {
            HeadWriter.upstreamRequest(head, bytes: $0, fields: fields, client: ForwardedClient("::1"), host: "", into: &out)
        }
        #expect(String(buffer: out) == "kept:GET / HTTP/1.1\r\nHost: \(longHost)\r\nX-Forwarded-For: ::1\r\nX-Forwarded-Proto: http\r\n"
            + "X-Forwarded-Host: \(longHost)\r\nForwarded: for=\"[::1]\";host=\"\(longHost)\";proto=http\r\n\r\n")

        // The writer itself: what overflowed is thrown away, whatever the estimate.
        for estimate in [0, 1, 63, 64, 65, 1000] {
            var buffer = ByteBuffer(string: "x")
            buffer.writeHead(estimate: estimate) { head in
                for index in 0..<100 { head.append("line "); head.append(String(index)); head.append(byte: UInt8(ascii: "\n")) }
            }
            let expected = "x" + (0..<100).map { "line \($0)\n" }.joined()
            #expect(String(buffer: buffer) == expected)
        }
    }

    @Test func keepsForwardingFieldsOnlyFromTrustedPeers() throws {
        let text = "GET / HTTP/1.1\r\nHost: shop.example:8080\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
            + "X-Forwarded-Host: shop.example\r\nForwarded: for=203.0.113.9;proto=https\r\nAccept: */*\r\n\r\n"
        var fields: [HeadField] = []
        let bytes = Array(text.utf8)
        guard case .complete(let head) = bytes.withUnsafeBytes({ HeadParser.request($0, fields: &fields) }) else {
            throw TestFailure("not parsed")
        }
        func write(client: String, trusted: Bool) -> String {
            var out = ByteBuffer()
            bytes.withUnsafeBytes {
                HeadWriter.upstreamRequest(head, bytes: $0, fields: fields, client: ForwardedClient(client), host: "", trusted: trusted, into: &out)
            }
            return String(buffer: out)
        }
        // A proxy in front: what it set is kept, and this hop is added.
        #expect(write(client: "10.0.0.2", trusted: true) == "GET / HTTP/1.1\r\nHost: shop.example:8080\r\n"
            + "X-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\nAccept: */*\r\n"
            + "X-Forwarded-For: 203.0.113.9, 10.0.0.2\r\n"
            + "Forwarded: for=203.0.113.9;proto=https, for=10.0.0.2;host=\"shop.example:8080\";proto=http\r\n\r\n")
        // Anybody else: what the client claimed is dropped.
        #expect(write(client: "2001:db8::7", trusted: false) == "GET / HTTP/1.1\r\nHost: shop.example:8080\r\nAccept: */*\r\n"
            + "X-Forwarded-For: 2001:db8::7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: shop.example:8080\r\n"
            + "Forwarded: for=\"[2001:db8::7]\";host=\"shop.example:8080\";proto=http\r\n\r\n")

        let peers = try TrustedPeers(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"])
        #expect(peers.contains("10.200.1.1") && peers.contains("192.0.2.7") && peers.contains("2001:db8:1::5"))
        #expect(!peers.contains("11.0.0.1") && !peers.contains("192.0.2.8") && !peers.contains("2001:db9::1") && !peers.contains(nil))
        #expect(TrustedPeers.loopback.contains("127.0.0.1") && TrustedPeers.loopback.contains("::1"))
        #expect(throws: RouterError.self) { try TrustedPeers(["10.0.0.0/33"]) }
        #expect(throws: RouterError.self) { try TrustedPeers(["shop.example"]) }
    }

    @Test func writesTheClientHeadForItsVersion() throws {
        let text = "HTTP/1.1 201 Created\r\nConnection: keep-alive, Content-Length\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: gzip, chunked\r\n"
            + "Content-Length: 3\r\nX-App: shop\r\n\r\n"
        var fields: [HeadField] = []
        let bytes = Array(text.utf8)
        let outcome = bytes.withUnsafeBytes { HeadParser.response($0, fields: &fields) }
        guard case .complete(let head) = outcome else { throw TestFailure("not parsed: \(outcome)") }
        func write(minor: Int, keepAlive: Bool, chunked: Bool) -> String {
            var out = ByteBuffer()
            bytes.withUnsafeBytes {
                HeadWriter.clientResponse(head, bytes: $0, fields: fields, clientMinorVersion: minor, keepAlive: keepAlive,
                                          passesTransferCoding: chunked, into: &out)
            }
            return String(buffer: out)
        }
        #expect(write(minor: 1, keepAlive: true, chunked: true)
            == "HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\nX-App: shop\r\n\r\n")
        #expect(write(minor: 0, keepAlive: false, chunked: false)
            == "HTTP/1.0 201 Created\r\nX-App: shop\r\nConnection: close\r\n\r\n")
    }
}
