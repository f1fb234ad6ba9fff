import Foundation
import Testing
@testable import Traffic

/// TLS terminated by the router, with certificates made by the openssl command and a Python `ssl` client.
@Suite(.serialized)
struct RouterTLSTests {
    /// Makes a self-signed certificate for 127.0.0.1 with common name `name`; returns the certificate and key paths.
    private static func makeCertificate(name: String, in dir: String) throws -> (certificate: String, key: String) {
        let certificate = "\(dir)/\(name).crt"
        let key = "\(dir)/\(name).key"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                             "-subj", "/CN=\(name)", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("openssl could not make a certificate") }
        return (certificate, key)
    }

    /// Connects over TLS offering h2 and http/1.1, checks the server's certificate against `certificate`, sends one
    /// request; prints the protocol agreed, whether the certificate matched, and the response body.
    private static let client = """
    import hashlib, socket, ssl, sys
    port, pem = int(sys.argv[1]), sys.argv[2]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5)) as tls:
        served = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
        expected = hashlib.sha256(ssl.PEM_cert_to_DER_cert(open(pem).read())).hexdigest()
        print(tls.selected_alpn_protocol())
        print("matches" if served == expected else "other certificate")
        tls.sendall(b"GET /headers HTTP/1.1\\r\\nHost: shop.example\\r\\nConnection: close\\r\\n\\r\\n")
        data = b""
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
        print(data.split(b"\\r\\n\\r\\n", 1)[1].decode())
    """

    private static func request(port: Int, expecting certificate: String, dir: String) throws -> [String] {
        let script = "\(dir)/tls_client.py"
        if !FileManager.default.fileExists(atPath: script) { try client.write(toFile: script, atomically: true, encoding: .utf8) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, String(port), certificate]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test func terminatesTLSWithALPNAndReloadsTheCertificateWhenItsFilesChange() async throws {
        let dir = try TempDir()
        let blue = try PythonUpstream.start(name: "blue", in: dir.path)
        let first = try Self.makeCertificate(name: "first", in: dir.path)
        let second = try Self.makeCertificate(name: "second", in: dir.path)
        let live = (certificate: "\(dir.path)/live.crt", key: "\(dir.path)/live.key")
        try FileManager.default.copyItem(atPath: first.certificate, toPath: live.certificate)
        try FileManager.default.copyItem(atPath: first.key, toPath: live.key)

        let router = Router(dataDir: dir.path)
        try await router.start()
        let listen = freePort()
        try await router.set(app: "shop", route: AppRoute(
            listen: Endpoint(host: "127.0.0.1", port: listen), upstreams: ["blue": Upstream(port: blue.port)], weights: ["blue": 100],
            tls: TLSFiles(certificate: live.certificate, key: live.key)))

        let answer = try await blocking { try Self.request(port: listen, expecting: first.certificate, dir: dir.path) }
        #expect(answer.count == 3, "\(answer)")
        #expect(answer.first == "http/1.1", "\(answer)")
        #expect(answer.dropFirst().first == "matches", "\(answer)")
        let headers = try JSONSerialization.jsonObject(with: Data((answer.last ?? "").utf8)) as? [String: String] ?? [:]
        #expect(headers["x-forwarded-proto"] == "https", "\(headers)")
        #expect(headers["forwarded"]?.hasSuffix(";proto=https") == true, "\(headers)")

        // A renewal replaces both files (moved into place, as certbot and most tools do): new connections get it.
        for (from, to) in [(second.key, live.key), (second.certificate, live.certificate)] {
            try? FileManager.default.removeItem(atPath: to + ".new")
            try FileManager.default.copyItem(atPath: from, toPath: to + ".new")
            rename(to + ".new", to)
        }
        var renewed: [String] = []
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            renewed = try await blocking { try Self.request(port: listen, expecting: second.certificate, dir: dir.path) }
            if renewed.dropFirst().first == "matches" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(renewed.dropFirst().first == "matches", "\(renewed)")

        // Files that do not make a certificate are refused when the route is set, and keep nothing half-done.
        let broken = "\(dir.path)/broken.crt"
        try "not a certificate".write(toFile: broken, atomically: true, encoding: .utf8)
        await #expect(throws: RouterError.self) {
            try await router.set(app: "shop", route: AppRoute(
                listen: Endpoint(host: "127.0.0.1", port: listen), upstreams: ["blue": Upstream(port: blue.port)], weights: ["blue": 100],
                tls: TLSFiles(certificate: broken, key: live.key)))
        }
        let still = try await blocking { try Self.request(port: listen, expecting: second.certificate, dir: dir.path) }
        #expect(still.dropFirst().first == "matches", "\(still)")

        await router.stop()
        blue.stop()
        dir.remove()
    }
    /// Turning TLS on for an address stops plain HTTP there for connections accepted before as well: a request in flight is
    /// answered with `Connection: close` and its connection closed after it; an idle keep-alive connection is closed at once.
    @Test func plainKeepAliveConnectionsCloseAfterTheirCurrentResponseWhenTLSIsTurnedOn() async throws {
        let dir = try TempDir()
        let blue = try PythonUpstream.start(name: "blue", in: dir.path)
        let certificate = try Self.makeCertificate(name: "shop", in: dir.path)
        let router = Router(dataDir: dir.path)
        try await router.start()
        let listen = freePort()
        let plain = AppRoute(listen: Endpoint(host: "127.0.0.1", port: listen), upstreams: ["blue": Upstream(port: blue.port)],
                             weights: ["blue": 100])
        try await router.set(app: "shop", route: plain)

        let idle = KeptClient(HTTPTestClient(port: listen))
        let first = try await blocking { try idle.client.request(path: "/", keepAlive: true) }
        #expect(first.status == 200 && first.body == "blue")
        #expect(first.headers["connection"] == nil, "\(first.headers)")

        // The color takes 2 s to answer this one: TLS is turned on while it waits.
        async let inFlight = blocking { try rawExchange(port: listen, "GET /slow HTTP/1.1\r\nHost: shop.example\r\n\r\n") }
        try await Task.sleep(for: .milliseconds(600))
        var secured = plain
        secured.tls = TLSFiles(certificate: certificate.certificate, key: certificate.key)
        try await router.set(app: "shop", route: secured)

        let idleAfter = try await blocking { Result { try idle.client.request(path: "/", keepAlive: true) } }
        if case .success(let response) = idleAfter {
            Issue.record("an idle plain connection was still served after TLS was turned on: \(response.status) \(response.headers)")
        }
        let answer = try await inFlight
        #expect(answer.hasPrefix("HTTP/1.1 200 "), "\(answer)")
        #expect(answer.lowercased().contains("\r\nconnection: close\r\n"), "\(answer)")
        #expect(answer.hasSuffix("\r\n\r\nblue"), "\(answer)")

        let secure = try await blocking { try Self.request(port: listen, expecting: certificate.certificate, dir: dir.path) }
        #expect(secure.dropFirst().first == "matches", "\(secure)")

        await router.stop()
        blue.stop()
        dir.remove()
    }

    /// The listen address moves and TLS is turned on in one change: a plain keep-alive connection of the old
    /// address is not served any more either.
    @Test func aMoveThatTurnsTLSOnRetiresPlainConnectionsOfTheOldAddress() async throws {
        let dir = try TempDir()
        let blue = try PythonUpstream.start(name: "blue", in: dir.path)
        let certificate = try Self.makeCertificate(name: "shop", in: dir.path)
        let router = Router(dataDir: dir.path)
        try await router.start()
        let before = freePort()
        let plain = AppRoute(listen: Endpoint(host: "127.0.0.1", port: before), upstreams: ["blue": Upstream(port: blue.port)],
                             weights: ["blue": 100])
        try await router.set(app: "shop", route: plain)
        let idle = KeptClient(HTTPTestClient(port: before))
        let first = try await blocking { try idle.client.request(path: "/", keepAlive: true) }
        #expect(first.status == 200 && first.body == "blue")

        var moved = plain
        moved.listen = Endpoint(host: "127.0.0.1", port: freePort())
        moved.tls = TLSFiles(certificate: certificate.certificate, key: certificate.key)
        try await router.set(app: "shop", route: moved)
        try await Task.sleep(for: .milliseconds(200))
        let idleAfter = try await blocking { Result { try idle.client.request(path: "/", keepAlive: true) } }
        if case .success(let response) = idleAfter {
            Issue.record("a plain connection of the old address was still served after the move to TLS: \(response.status)")
        }
        let movedPort = moved.listen.port
        let secure = try await blocking { try Self.request(port: movedPort, expecting: certificate.certificate, dir: dir.path) }
        #expect(secure.dropFirst().first == "matches", "\(secure)")
        await router.stop()
        blue.stop()
        dir.remove()
    }
}

/// One client connection kept across awaits; used by one thread at a time.
private final class KeptClient: @unchecked Sendable {
    let client: HTTPTestClient
    init(_ client: HTTPTestClient) { self.client = client }
}
