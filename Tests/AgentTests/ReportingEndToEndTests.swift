import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TestSupport
@testable import Agent
import Drivers
import Reconcile

/// Reporting back with the real binary: commit statuses and the generic webhook at a recording HTTP server of the
/// test's own (a real process on a loopback port), checked against each provider's documented shape; and the
/// GitLab and Gitea webhook receivers triggering a fetch of a remote.
@Suite(.serialized) struct ReportingEndToEndTests {
    /// A file holding `text`, beside the story's data dir.
    func secretFile(_ story: Story, _ name: String, _ text: String) throws -> String {
        let path = story.data + "-\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func statuses(_ server: RecordingServer, prefix: String, commit: String) -> [RecordingServer.Request] {
        server.requests().filter { $0.path == "\(prefix)/statuses/\(commit)" }
    }

    func hmac(_ body: Data, _ secret: String) -> String {
        "sha256=" + HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8))).map { String(format: "%02x", $0) }.joined()
    }

    /// GitHub: a deploy gets `pending` then `success`, a deploy whose color never gets healthy `pending` then
    /// `failure`; the generic webhook gets both, signed with the secret.
    @Test(.timeLimit(.minutes(3)))
    func gitHubStatusesAndTheSignedWebhookForADeployAndAFailure() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let server = try RecordingServer()
        defer { server.stop() }
        let token = try secretFile(story, "token", "ghp_0123456789\n")
        let secret = try secretFile(story, "notify-secret", "n0tify-s3cret\n")
        let apply = ["apply", "--repo", story.repo.path, "--data-dir", story.data, "--status-provider", "github", "--status-api", server.url,
                     "--status-repo", "acme/shop", "--status-token-file", token, "--status-context", "teal/prod",
                     "--status-target-url", "http://127.0.0.1:9400/", "--notify-url", server.url + "/notify", "--notify-secret-file", secret]
        let first = try TealBinary.run(apply, timeout: 120)
        #expect(first.status == 0 && first.stdout.contains("outcome: applied"), "\(first.stdout)\(first.stderr)")
        let commit = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)

        let posted = statuses(server, prefix: "/repos/acme/shop", commit: commit)
        #expect(posted.map { $0.json?["state"] as? String } == ["pending", "success"], "\(server.requests().map(\.path))")
        for request in posted {
            #expect(request.method == "POST")
            #expect(request.headers["authorization"] == "Bearer ghp_0123456789")
            #expect(request.headers["accept"] == "application/vnd.github+json" && request.headers["content-type"] == "application/json")
            #expect(request.json?["context"] as? String == "teal/prod")
            #expect(request.json?["target_url"] as? String == "http://127.0.0.1:9400/")
            #expect((request.json?["description"] as? String).map { !$0.isEmpty && $0.count <= 140 } == true)
        }
        #expect(!first.stderr.contains("ghp_0123456789"))

        let hooks = server.requests().filter { $0.path == "/notify" }
        #expect(hooks.map { $0.json?["event"] as? String } == ["pending", "outcome"])
        for hook in hooks {
            #expect(hook.headers["x-teal-signature-256"] == hmac(hook.body, "n0tify-s3cret"), "the signature verifies with the secret")
            #expect(hook.headers["x-teal-signature-256"] != hmac(hook.body, "another secret"))
            #expect(hook.json?["commit"] as? String == commit && hook.json?["apps"] as? [String] == ["shop"])
            #expect(hook.json?["repository"] as? String == story.repo.path && hook.json?["branch"] as? String == "main")
        }
        #expect(hooks.last?.json?["outcome"] as? String == "applied" && hooks.last?.json?["state"] as? String == "success")

        // A deploy whose green never answers fails: pending, then failure with the failing step.
        let broken = greenColor.replacingOccurrences(of: #"["python3", "app.py"]"#, with: #"["python3", "-c", "import time; time.sleep(120)"]"#)
        try story.repo.write("apps/shop/environment.yaml",
                             try story.environment().replacingOccurrences(of: "start_timeout: 30s", with: "start_timeout: 2s") + broken + "\n")
        let failing = try story.repo.commit("Deploy a green that never answers")
        let second = try TealBinary.run(apply, timeout: 120)
        #expect(second.status == 1 && second.stdout.contains("outcome: failed"), "\(second.stdout)\(second.stderr)")
        let failed = statuses(server, prefix: "/repos/acme/shop", commit: failing)
        #expect(failed.map { $0.json?["state"] as? String } == ["pending", "failure"])
        #expect((failed.last?.json?["description"] as? String)?.contains("start green") == true, "\(failed.last?.json ?? [:])")
        let outcome = server.requests().filter { $0.path == "/notify" && $0.json?["commit"] as? String == failing }.last
        #expect(outcome?.json?["outcome"] as? String == "failed" && outcome?.json?["state"] as? String == "failure")
        #expect((outcome?.json?["errors"] as? [String])?.first?.contains("start green") == true)
        #expect(outcome.map { $0.headers["x-teal-signature-256"] == hmac($0.body, "n0tify-s3cret") } == true)
        #expect(await story.servedBy() == "blue")
    }

    /// GitLab's and Gitea's documented shapes; a status server that is down changes nothing of the outcome.
    @Test(.timeLimit(.minutes(3)))
    func gitLabAndGiteaStatusesAndAStatusServerThatIsDown() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let server = try RecordingServer()
        defer { server.stop() }
        let token = try secretFile(story, "token", "glpat-abcdef\n")
        func apply(_ options: [String]) throws -> TealBinary.Result {
            try TealBinary.run(["apply", "--repo", story.repo.path, "--data-dir", story.data, "--status-token-file", token] + options, timeout: 120)
        }
        let first = try apply(["--status-provider", "gitlab", "--status-api", server.url + "/api/v4", "--status-repo", "acme/shop"])
        #expect(first.status == 0 && first.stdout.contains("outcome: applied"), "\(first.stdout)\(first.stderr)")
        let commit = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        let gitlab = statuses(server, prefix: "/api/v4/projects/acme%2Fshop", commit: commit)
        #expect(gitlab.map { $0.json?["state"] as? String } == ["running", "success"], "\(server.requests().map(\.path))")
        for request in gitlab {
            #expect(request.headers["private-token"] == "glpat-abcdef" && request.headers["authorization"] == nil)
            #expect(request.json?["name"] as? String == "teal" && request.json?["context"] == nil)
        }

        try story.repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# touched\n")
        let touched = try story.repo.commit("Touch traffic.yaml")
        let second = try apply(["--status-provider", "gitea", "--status-api", server.url + "/api/v1", "--status-repo", "acme/shop"])
        #expect(second.status == 0 && second.stdout.contains("outcome: applied"), "\(second.stdout)\(second.stderr)")
        let gitea = statuses(server, prefix: "/api/v1/repos/acme/shop", commit: touched)
        #expect(gitea.map { $0.json?["state"] as? String } == ["pending", "success"], "\(server.requests().map(\.path))")
        #expect(gitea.allSatisfy { $0.headers["authorization"] == "token glpat-abcdef" && $0.json?["context"] as? String == "teal" })

        // Nothing listens at the API: the outcome is the same, the status is given up after its tries and logged.
        try story.repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# touched again\n")
        try story.repo.commit("Touch traffic.yaml again")
        let started = Date()
        let down = try apply(["--status-provider", "github", "--status-api", "http://127.0.0.1:\(freeLoopbackPort())", "--status-repo", "acme/shop",
                              "--report-attempts", "2"])
        #expect(down.status == 0 && down.stdout.contains("outcome: applied"), "\(down.stdout)\(down.stderr)")
        #expect(down.stderr.contains("could not deliver the github report") && down.stderr.contains("after 2 attempts"), "\(down.stderr)")
        #expect(!down.stderr.contains("glpat-abcdef"))
        #expect(Date().timeIntervalSince(started) < 25, "two tries of two reports to a closed port take seconds, not the flush's 30s")
    }

    /// The reporter over a real socket: a 5xx is tried `attempts` times then counted as given up, a 401 is not
    /// tried again, and the token file is read again for each request.
    @Test(.timeLimit(.minutes(1)))
    func deliveriesAreRetriedOnlyWhenWorthItAndTheTokenIsReadEachTime() async throws {
        final class Counts: ReconcileMetrics, @unchecked Sendable {
            let lock = NSLock()
            var failed = 0, delivered = 0
            func reportDelivered(target: String, delivered ok: Bool) {
                lock.lock(); defer { lock.unlock() }
                if ok { delivered += 1 } else { failed += 1 }
            }
        }
        let token = NSTemporaryDirectory() + "teal-token-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: token) }
        try "first-token\n".write(toFile: token, atomically: true, encoding: .utf8)
        let report = CommitReport(event: .pending, commit: "0123abcd", apps: ["shop"], message: "reconciling", host: "h")
        for (status, tries) in [(503, 3), (401, 1)] {
            let server = try RecordingServer(status: status)
            defer { server.stop() }
            let counts = Counts()
            let reporter = HTTPOutcomeReporter(settings: ReportSettings(provider: .github, api: server.url, repository: "acme/shop", tokenFile: token,
                                                                        attempts: 3, backoff: .milliseconds(50)),
                                               repository: "/srv/desired", branch: "main", metrics: counts)
            reporter.report(report)
            await reporter.flush(timeout: .seconds(20))
            #expect(server.requests().count == tries, "HTTP \(status)")
            #expect(counts.failed == 1 && counts.delivered == 0, "HTTP \(status)")
        }
        let server = try RecordingServer()
        defer { server.stop() }
        let counts = Counts()
        let reporter = HTTPOutcomeReporter(settings: ReportSettings(provider: .github, api: server.url, repository: "acme/shop", tokenFile: token),
                                           repository: "/srv/desired", branch: "main", metrics: counts)
        reporter.report(report)
        await reporter.flush(timeout: .seconds(10))
        try "rotated-token\n".write(toFile: token, atomically: true, encoding: .utf8)
        reporter.report(report)
        await reporter.flush(timeout: .seconds(10))
        #expect(server.requests().map { $0.headers["authorization"] } == ["Bearer first-token", "Bearer rotated-token"])
        #expect(counts.delivered == 2 && counts.failed == 0)
    }

    /// A bad option is a clear error before anything runs.
    @Test func statusOptionsAreChecked() throws {
        let story = try Story()
        defer { story.cleanup() }
        let noRepo = try TealBinary.run(["apply", "--repo", story.repo.path, "--data-dir", story.data, "--status-provider", "github",
                                         "--status-token-file", "/dev/null"])
        #expect(noRepo.status != 0 && noRepo.stderr.contains("--status-repo"), "\(noRepo.stderr)")
        let noToken = try TealBinary.run(["apply", "--repo", story.repo.path, "--data-dir", story.data, "--status-provider", "gitea",
                                          "--status-api", "http://127.0.0.1:1", "--status-repo", "acme/shop", "--status-token-file", story.data + "-missing"])
        #expect(noToken.status != 0 && noToken.stderr.contains("cannot read the file"), "\(noToken.stderr)")
        let head = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(story.note(head) == nil, "nothing ran")
    }

    /// GitLab's X-Gitlab-Token and Gitea's X-Gitea-Signature on POST /hooks/git make the agent fetch a remote at
    /// once (the poll is a minute away); a wrong secret gets 401 and triggers nothing. The agent's statuses go to an
    /// API that is down: counted in the metrics, the outcomes unchanged.
    @Test(.timeLimit(.minutes(4)))
    func gitLabAndGiteaWebhooksTriggerAFetch() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try RemoteSourceTests.Remote(story)
        defer { remote.cleanup() }
        let daemon = try GitDaemon(base: (remote.bare as NSString).deletingLastPathComponent)
        defer { daemon.stop() }
        let token = try secretFile(story, "token", "ghp_secret_token\n")
        let admin = freeLoopbackPort()
        let agent = try Agent(story: story, admin: admin, repo: daemon.url((remote.bare as NSString).lastPathComponent),
                              extra: ["--interval", "60s", "--drift-interval", "60s", "--webhook-secret", "s3cret",
                                      "--status-provider", "github", "--status-api", "http://127.0.0.1:\(freeLoopbackPort())",
                                      "--status-repo", "acme/shop", "--status-token-file", token, "--report-attempts", "1"])
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")
        let hook = "http://127.0.0.1:\(admin)/hooks/git"

        func post(_ headers: [String: String], body: String) async throws -> Int? {
            var request = URLRequest(url: URL(string: hook)!)
            request.httpMethod = "POST"
            request.httpBody = Data(body.utf8)
            for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
            let (_, response) = try await URLSession.shared.data(for: request)
            return (response as? HTTPURLResponse)?.statusCode
        }

        // GitLab: the secret itself in X-Gitlab-Token.
        try remote.clone.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# pushed for GitLab\n")
        let first = try remote.clone.commit("Touch traffic for GitLab")
        try remote.push("main")
        let gitlabBody = #"{"object_kind":"push","ref":"refs/heads/main"}"#
        #expect(try await post(["X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"], body: gitlabBody) == 401)
        #expect(try await post(["X-Gitlab-Event": "Push Hook"], body: gitlabBody) == 401)
        try await Task.sleep(nanoseconds: 700_000_000)
        #expect(!agent.output.contains("sha1:\(first)"), "a refused webhook triggers nothing, and the poll is a minute away")
        #expect(try await post(["X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "s3cret"], body: gitlabBody) == 202)
        #expect(await HTTP.eventually(timeout: 15) { agent.output.contains("serving main@sha1:\(first)") }, "\(agent.output)")

        // Gitea: the bare hex HMAC-SHA256 of the body in X-Gitea-Signature.
        try remote.clone.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# pushed for Gitea\n")
        let second = try remote.clone.commit("Touch traffic for Gitea")
        try remote.push("main")
        let giteaBody = #"{"ref":"refs/heads/main","after":"\#(second)"}"#
        let signer = WebhookSignature(secret: "s3cret")
        #expect(try await post(["X-Gitea-Event": "push", "X-Gitea-Signature": WebhookSignature(secret: "wrong").hex(Array(giteaBody.utf8))],
                               body: giteaBody) == 401)
        #expect(try await post(["X-Gitea-Event": "push", "X-Gitea-Signature": signer.hex(Array(giteaBody.utf8))], body: giteaBody + " ") == 401)
        try await Task.sleep(nanoseconds: 700_000_000)
        #expect(!agent.output.contains("sha1:\(second)"))
        #expect(try await post(["X-Gitea-Event": "push", "X-Gitea-Signature": signer.hex(Array(giteaBody.utf8))], body: giteaBody) == 202)
        #expect(await HTTP.eventually(timeout: 15) { agent.output.contains("serving main@sha1:\(second)") }, "\(agent.output)")

        // The statuses could not go out: counted, never an outcome; the token never in the log.
        let metrics = String(decoding: await HTTP.request("http://127.0.0.1:\(admin)/metrics")?.body ?? Data(), as: UTF8.self)
        #expect(await HTTP.eventually(timeout: 10) {
            let text = String(decoding: await HTTP.request("http://127.0.0.1:\(admin)/metrics")?.body ?? Data(), as: UTF8.self)
            return text.contains(#"teal_report_failures_total{target="github"}"#)
        }, "\(metrics)")
        #expect(try remote.clone.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines) == second)
        #expect(await story.servedBy() == "blue")
        #expect(!agent.output.contains("ghp_secret_token"))
    }
}
