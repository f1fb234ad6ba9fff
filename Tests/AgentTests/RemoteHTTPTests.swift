import Foundation
import Testing
import TestSupport

/// A desired-state repository behind `git http-backend` over HTTPS (a certificate authority made per run, the
/// server's certificate for `localhost`) and plain HTTP, with Basic and bearer authentication, fetched and pushed
/// to by the real `teal` binary through libgit2.
@Suite(.serialized) struct RemoteHTTPTests {
    typealias Remote = RemoteSourceTests.Remote

    /// A secret in a file of its own, as teal reads it.
    static func secretFile(_ story: Story, _ name: String, _ secret: String) throws -> String {
        let path = story.data + "-\(name)"
        try (secret + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Through an HTTP proxy (`--proxy`): https in a CONNECT tunnel reaches the server through the proxy; plain
    /// http with a proxy is refused before anything is sent; a proxy that is not there is an error.
    @Test(.timeLimit(.minutes(3)))
    func fetchesHTTPSThroughAProxy() throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let root = (remote.bare as NSString).deletingLastPathComponent, name = (remote.bare as NSString).lastPathComponent
        let password = "pw-\(UUID().uuidString.prefix(8))"
        let secure = try HTTPGitServer(root: root, authentication: .init(basic: ("deploy", password)))
        defer { secure.stop() }
        let plain = try HTTPGitServer(root: root, tls: false, authentication: .init(basic: ("deploy", password)))
        defer { plain.stop() }
        let proxy = try ForwardProxy()
        defer { proxy.stop() }
        let passwordFile = try Self.secretFile(story, "password", password)
        defer { try? FileManager.default.removeItem(atPath: passwordFile) }
        func validate(_ url: String, proxy: String, _ extra: [String] = []) throws -> TealBinary.Result {
            try TealBinary.run(["validate", "--repo", url, "--data-dir", story.data, "--http-user", "deploy",
                                "--password-file", passwordFile, "--proxy", proxy] + extra, timeout: 60)
        }

        let viaTunnel = try validate(secure.url(name), proxy: proxy.url, ["--ca-file", secure.caFile])
        #expect(viaTunnel.status == 0, "\(viaTunnel.stderr)\n\(proxy.requests)")
        #expect(proxy.requests.contains("CONNECT localhost:\(secure.port)"), "\(proxy.requests)")
        #expect(secure.requests.contains("/\(name)/info/refs"), "\(secure.requests)")

        // Plain http through a proxy is refused up front: libgit2 1.5 would send the proxy-form request to the
        // server itself.
        let plainViaProxy = try validate(plain.url(name), proxy: proxy.url)
        #expect(plainViaProxy.status == 2 && plainViaProxy.stderr.contains("--proxy works for https:// repositories only"),
                "\(plainViaProxy.stderr)")
        #expect(!plain.requests.contains("info/refs"), "nothing reached the server: \(plain.requests)")

        let noProxy = try validate(secure.url(name), proxy: "http://127.0.0.1:\(freeLoopbackPort())", ["--ca-file", secure.caFile])
        #expect(noProxy.status == 1, "\(noProxy.stdout)")
        #expect(!noProxy.stderr.contains(password))
    }

    /// The same remote over HTTPS with Basic, HTTPS with a bearer token and plain HTTP with Basic: the first
    /// commit, a deploy and its revert are each applied through one of them, and the notes pushed over HTTPS
    /// reach the remote's refs/notes/teal.
    @Test(.timeLimit(.minutes(5)))
    func deploysOverHTTPSWithBasicOrBearerAndOverPlainHTTP() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let root = (remote.bare as NSString).deletingLastPathComponent, name = (remote.bare as NSString).lastPathComponent
        let password = "pw-\(UUID().uuidString.prefix(8))", token = "tok-\(UUID().uuidString.prefix(12))"
        let basic = try HTTPGitServer(root: root, authentication: .init(basic: ("deploy", password)))
        defer { basic.stop() }
        let bearer = try HTTPGitServer(root: root, authentication: .init(bearer: token))
        defer { bearer.stop() }
        let plain = try HTTPGitServer(root: root, tls: false, authentication: .init(basic: ("deploy", password)))
        defer { plain.stop() }
        let passwordFile = try Self.secretFile(story, "password", password), tokenFile = try Self.secretFile(story, "token", token)
        defer { try? FileManager.default.removeItem(atPath: passwordFile); try? FileManager.default.removeItem(atPath: tokenFile) }

        // HTTPS, Basic, notes pushed back.
        let first = try TealBinary.run(["apply", "--repo", basic.url(name), "--data-dir", story.data, "--ca-file", basic.caFile,
                                        "--http-user", "deploy", "--password-file", passwordFile, "--push-notes"], timeout: 120)
        #expect(first.status == 0 && first.stdout.contains("outcome: applied"), "\(first.stdout)\(first.stderr)\n\(basic.requests)")
        #expect(await story.servedBy() == "blue")
        #expect(basic.requests.contains("POST /\(name)/git-receive-pack 200 Basic"), "the note went over HTTPS:\n\(basic.requests)")
        let initial = try remote.clone.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        try remote.clone.git("fetch", "-q", "origin", "+refs/notes/teal:refs/notes/teal")
        #expect(try remote.clone.git("notes", "--ref=teal", "show", initial).hasPrefix("outcome: applied"))

        // HTTPS with a bearer token: a deploy pushed from the clone.
        try remote.clone.write("apps/shop/environment.yaml", try String(contentsOfFile: remote.clone.path + "/apps/shop/environment.yaml",
                                                                        encoding: .utf8) + greenColor + "\n")
        try remote.clone.commit("Deploy green")
        try remote.push("main")
        let second = try TealBinary.run(["apply", "--repo", bearer.url(name), "--data-dir", story.data, "--ca-file", bearer.caFile,
                                         "--token-file", tokenFile], timeout: 120)
        #expect(second.status == 0 && second.stdout.contains("outcome: applied"), "\(second.stdout)\(second.stderr)\n\(bearer.requests)")
        #expect(try pids(story).green != nil)
        #expect(bearer.requests.contains("200 Bearer") && !bearer.requests.contains("200 Basic"), "\(bearer.requests)")

        // Plain HTTP: the revert.
        try remote.clone.git("revert", "--no-edit", "HEAD")
        try remote.push("main")
        let third = try TealBinary.run(["apply", "--repo", plain.url(name), "--data-dir", story.data,
                                        "--http-user", "deploy", "--password-file", passwordFile], timeout: 120)
        #expect(third.status == 0 && third.stdout.contains("outcome: applied"), "\(third.stdout)\(third.stderr)\n\(plain.requests)")
        #expect(try pids(story).green == nil)
        #expect(await story.servedBy() == "blue")
        for output in [first, second, third] {
            #expect(!output.stdout.contains(password) && !output.stderr.contains(password) && !output.stderr.contains(token))
        }
    }

    /// A wrong password, a wrong token, no credentials and a certificate from an authority teal was not told of:
    /// each a clear error naming the remote and the cause, never the secret, and transient (no outcome).
    @Test(.timeLimit(.minutes(3)))
    func wrongCredentialsAndAnUnknownAuthorityAreClearTransientErrors() throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let root = (remote.bare as NSString).deletingLastPathComponent, name = (remote.bare as NSString).lastPathComponent
        let server = try HTTPGitServer(root: root, authentication: .init(basic: ("deploy", "right-password"), bearer: "right-token"))
        defer { server.stop() }
        let url = server.url(name)
        func apply(_ options: [String]) throws -> TealBinary.Result {
            try TealBinary.run(["apply", "--repo", url, "--data-dir", story.data, "--attempts", "1"] + options, timeout: 60)
        }
        let wrongPassword = "wrong-\(UUID().uuidString.prefix(8))"
        let wrong = try Self.secretFile(story, "wrong", wrongPassword)
        defer { try? FileManager.default.removeItem(atPath: wrong) }

        let refused = try apply(["--ca-file", server.caFile, "--http-user", "deploy", "--password-file", wrong])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains(url) && refused.stderr.contains("refused the credentials") && refused.stderr.contains("transient"),
                "\(refused.stderr)")
        #expect(!refused.stderr.contains(wrongPassword) && !refused.stdout.contains(wrongPassword))
        #expect(!refused.stdout.contains("outcome:"), "\(refused.stdout)")

        let badToken = try apply(["--ca-file", server.caFile, "--token-file", wrong])
        #expect(badToken.status == 1)
        #expect(badToken.stderr.contains(url) && badToken.stderr.contains("bearer token"), "\(badToken.stderr)")
        #expect(!badToken.stderr.contains(wrongPassword))

        let anonymous = try apply(["--ca-file", server.caFile])
        #expect(anonymous.status == 1)
        #expect(anonymous.stderr.contains("--http-user") && anonymous.stderr.contains("--token-file"), "\(anonymous.stderr)")

        let untrusted = try apply(["--http-user", "deploy", "--password-file", wrong])
        #expect(untrusted.status == 1)
        #expect(untrusted.stderr.contains(url) && untrusted.stderr.contains("certificate of localhost is not trusted")
                && untrusted.stderr.contains("--ca-file"), "\(untrusted.stderr)")
        #expect(!untrusted.stdout.contains("outcome:"))
        #expect(!server.requests.contains(" 200 "), "nothing was served to a wrong credential:\n\(server.requests)")
    }

    /// The agent fetching over HTTPS keeps serving while its password file holds a wrong password (rotation gone
    /// wrong): the pushed commit waits, transient, with the cause in the log and never the secret; once the file
    /// is right again the commit is applied, with no restart.
    @Test(.timeLimit(.minutes(4)))
    func theAgentKeepsServingThroughAWrongPasswordAndRecovers() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let root = (remote.bare as NSString).deletingLastPathComponent, name = (remote.bare as NSString).lastPathComponent
        let password = "pw-\(UUID().uuidString.prefix(8))"
        let server = try HTTPGitServer(root: root, authentication: .init(basic: ("deploy", password)))
        defer { server.stop() }
        let passwordFile = try Self.secretFile(story, "password", password)
        defer { try? FileManager.default.removeItem(atPath: passwordFile) }
        let agent = try Agent(story: story, admin: freeLoopbackPort(), repo: server.url(name),
                              extra: ["--ca-file", server.caFile, "--http-user", "deploy", "--password-file", passwordFile])
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")

        let wrongPassword = "wrong-\(UUID().uuidString.prefix(8))"
        try (wrongPassword + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
        try remote.clone.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# pushed\n")
        let pushed = try remote.clone.commit("Touch traffic")
        try remote.push("main")
        #expect(await HTTP.eventually(timeout: 30) { agent.output.contains("refused the credentials") }, "\(agent.output)")
        #expect(agent.output.contains(server.url(name)), "\(agent.output)")
        #expect(await story.servedBy() == "blue", "the last good state keeps serving")
        #expect(!agent.output.contains("serving main@sha1:\(pushed)"))

        try (password + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
        #expect(await HTTP.eventually(timeout: 60) { agent.output.contains("serving main@sha1:\(pushed)") }, "\(agent.output)")
        #expect(!agent.output.contains(password) && !agent.output.contains(wrongPassword))
        #expect(await story.servedBy() == "blue")
    }
}
