import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TestSupport
import Traffic
@testable import Agent

struct CertificateError: Error, CustomStringConvertible {
    var description: String { "openssl could not make a certificate" }
}

/// traffic.yaml's `tls` and `trusted_forwarders` committed to the repository reach the router through the real
/// agent; the status page links each step to the log lines that step wrote.
@Suite(.serialized) struct RouterSettingsEndToEndTests {
    /// A self-signed Ed25519 certificate for 127.0.0.1, made for this run; its certificate and key paths.
    static func makeCertificate(in dir: String) throws -> (certificate: String, key: String) {
        let certificate = "\(dir)/shop.crt", key = "\(dir)/shop.key"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["req", "-x509", "-newkey", "ed25519", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", certificate]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CertificateError() }
        return (certificate, key)
    }

    /// GET / over TLS; prints whether the served certificate is `pem`, the status line and the body.
    static let client = """
    import hashlib, socket, ssl, sys
    port, pem = int(sys.argv[1]), sys.argv[2]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    try:
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5)) as tls:
            served = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
            expected = hashlib.sha256(ssl.PEM_cert_to_DER_cert(open(pem).read())).hexdigest()
            print("matches" if served == expected else "other certificate")
            tls.sendall(b"GET / HTTP/1.1\\r\\nHost: shop.example\\r\\nConnection: close\\r\\n\\r\\n")
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\\r\\n\\r\\n")
            print(head.split(b"\\r\\n")[0].decode())
            print(body.decode())
    except Exception as error:
        print("no TLS: %s" % error)
    """

    static func httpsGet(port: Int, certificate: String, dir: String) -> [String] {
        let script = "\(dir)/https_get.py"
        if !FileManager.default.fileExists(atPath: script) { try? client.write(toFile: script, atomically: true, encoding: .utf8) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, String(port), certificate]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        guard (try? process.run()) != nil else { return [] }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test(.timeLimit(.minutes(4)))
    func committingTLSMakesTheRouterServeHTTPSOnTheListenAddress() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let certs = story.repo.path + "-certs"
        try FileManager.default.createDirectory(atPath: certs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: certs) }
        let cert = try Self.makeCertificate(in: certs)
        let agent = try Agent(story: story, admin: freeLoopbackPort())
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")

        try story.repo.write("apps/shop/traffic.yaml", """
            listen: 127.0.0.1:\(story.port)
            live: blue
            tls:
              certificate: \(cert.certificate)
              key: \(cert.key)
            trusted_forwarders: [127.0.0.1, 10.0.0.0/8]

            """)
        let commit = try story.repo.commit("Serve the shop over HTTPS")
        let note = await story.waitForNote(commit)
        #expect(note?.hasPrefix("outcome: applied") == true, "\(note ?? agent.output)")
        #expect(note?.contains("route all traffic to blue") == true, "\(note ?? "")")

        var answer: [String] = []
        let port = story.port
        let served = await HTTP.eventually(timeout: 15, every: 0.2) {
            answer = await Task.detached { Self.httpsGet(port: port, certificate: cert.certificate, dir: certs) }.value
            return answer.first == "matches"
        }
        #expect(served, "\(answer) \(agent.output)")
        #expect(answer.dropFirst().first?.hasPrefix("HTTP/1.1 200") == true, "\(answer)")
        let body = try JSONSerialization.jsonObject(with: Data((answer.last ?? "").utf8)) as? [String: Any]
        #expect(body?["teal_color"] as? String == "blue", "\(answer)")
        // A new plain HTTP connection to that address gets no answer any more.
        let fresh = URLSession(configuration: .ephemeral)
        let plainReply = try? await fresh.data(from: URL(string: story.base + "/")!)
        #expect((plainReply?.1 as? HTTPURLResponse)?.statusCode != 200)
        fresh.invalidateAndCancel()

        let route = try #require(try RouterClient(dataDir: story.data).routes()["shop"])
        #expect(route.tls == TLSFiles(certificate: cert.certificate, key: cert.key))
        #expect(route.trustedForwarders == ["127.0.0.1", "10.0.0.0/8"])

        // Taking `tls` out serves plain HTTP again; forwarders left out mean loopback only (the router's default).
        try story.repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n")
        let plain = try story.repo.commit("Back to plain HTTP")
        let plainNote = await story.waitForNote(plain)
        #expect(plainNote?.hasPrefix("outcome: applied") == true, "\(plainNote ?? agent.output)")
        #expect(await HTTP.eventually(timeout: 15) { await story.servedBy() == "blue" }, "\(agent.output)")
        let after = try #require(try RouterClient(dataDir: story.data).routes()["shop"])
        #expect(after.tls == nil)
        #expect(after.trustedForwarders == nil)
    }

    /// The first deploy's "start blue" step links to the lines blue wrote while it started (its health checks),
    /// not to the requests it answered later.
    @Test(.timeLimit(.minutes(3)))
    func eachStepLinksToTheLogLinesItWrote() async throws {
        let story = try Story()
        defer { story.cleanup() }
        try story.repo.write("apps/shop/environment.yaml",
                             try story.environment().replacingOccurrences(of: "LOG_LEVEL: info", with: "LOG_LEVEL: debug"))
        let commit = try story.repo.commit("Blue logs every request")
        let admin = freeLoopbackPort()
        let agent = try Agent(story: story, admin: admin)
        defer { agent.kill9() }
        let note = await story.waitForNote(commit)
        #expect(note?.hasPrefix("outcome: applied") == true, "\(note ?? agent.output)")
        for _ in 0..<5 { _ = await story.servedBy() }
        let base = "http://127.0.0.1:\(admin)"
        let whole = await HTTP.request(base + "/logs/shop/blue?tail=100000")
        let wholeText = String(decoding: whole?.body ?? Data(), as: UTF8.self)
        #expect(wholeText.contains("\"GET / HTTP/1.1\" 200"), "\(wholeText)")

        let page = String(decoding: (await HTTP.request(base + "/"))?.body ?? Data(), as: UTF8.self)
        let links = page.components(separatedBy: "href=\"/logs/shop/blue?step=").dropFirst().compactMap { $0.split(separator: "\"").first }
        #expect(links.count == 1, "\(page)")
        let step = try #require(links.first.flatMap { Int64($0) })
        let reply = try #require(await HTTP.request(base + "/logs/shop/blue?step=\(step)"))
        let lines = String(decoding: reply.body, as: UTF8.self)
        #expect(reply.status == 200)
        #expect(lines.contains("\"GET /healthz HTTP/1.1\" 200"), "\(lines)")
        #expect(!lines.contains("\"GET / HTTP/1.1\""), "\(lines)")
        #expect(wholeText.hasPrefix(lines), "the step's lines are the start of blue's log")

        // The range belongs to blue: asked under another color, or for a step without one, nothing is served.
        #expect(await HTTP.request(base + "/logs/shop/green?step=\(step)")?.status == 404)
        #expect(await HTTP.request(base + "/logs/shop/blue?step=999999")?.status == 404)
        let json = try JSONSerialization.jsonObject(with: (await HTTP.request(base + "/status"))?.body ?? Data()) as? [String: Any]
        let steps = ((json?["timeline"] as? [[String: Any]])?.first?["steps"] as? [[String: Any]]) ?? []
        #expect(steps.contains { $0["journal"] as? Int == Int(step) && $0["color"] as? String == "blue" }, "\(steps)")
    }
}
