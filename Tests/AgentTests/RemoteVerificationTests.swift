@testable import Drivers
import Foundation
import Reconcile
import Testing
import TestSupport

/// `--verify`, the path filter and the fetch metrics, with the real binary against a remote served by git daemon
/// and commits signed by the git CLI.
@Suite(.serialized) struct RemoteVerificationTests {
    typealias Remote = RemoteSourceTests.Remote

    /// With `--verify head`, an unsigned or tampered tip is refused with the reason and never applied; a signed
    /// one is applied. With `--verify all`, an unsigned commit below a signed tip is refused too.
    @Test(.timeLimit(.minutes(5)))
    func unsignedAndTamperedPushesAreRefusedAndNeverApplied() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let daemon = try GitDaemon(base: (remote.bare as NSString).deletingLastPathComponent)
        defer { daemon.stop() }
        let keys = story.data + "-keys"
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let key = try SSHSigningKey(type: "ed25519", in: keys, name: "deployer")
        let allowed = keys + "/allowed_signers"
        try (key.allowedSigner("deployer@example.com", options: "namespaces=\"git\"") + "\n").write(toFile: allowed, atomically: true, encoding: .utf8)
        let url = daemon.url((remote.bare as NSString).lastPathComponent)
        func apply(_ mode: String = "head") throws -> TealBinary.Result {
            try TealBinary.run(["apply", "--repo", url, "--data-dir", story.data, "--verify", mode, "--allowed-signers", allowed], timeout: 120)
        }
        func status() throws -> String { try TealBinary.run(["status", "--data-dir", story.data, "--json"], timeout: 60).stdout }

        // The story's first commit is unsigned: refused, nothing runs.
        let unsignedFirst = try apply()
        #expect(unsignedFirst.status == 1 && unsignedFirst.stdout.contains("outcome: refused"), "\(unsignedFirst.stdout)\(unsignedFirst.stderr)")
        #expect(unsignedFirst.stderr.contains("it is not signed"), "\(unsignedFirst.stderr)")
        #expect(await story.servedBy() == nil, "an unsigned commit is never applied")

        let signed = try remote.clone.commitSigned("Signed by the deployer", sshKey: key, allowEmpty: true)
        try remote.push("main")
        let first = try apply()
        #expect(first.status == 0 && first.stdout.contains("outcome: applied"), "\(first.stdout)\(first.stderr)")
        #expect(await story.servedBy() == "blue")

        // An unsigned deploy of green: refused, green never starts, blue keeps serving.
        try remote.clone.write("apps/shop/environment.yaml", try String(contentsOfFile: remote.clone.path + "/apps/shop/environment.yaml",
                                                                         encoding: .utf8) + greenColor + "\n")
        let unsigned = try remote.clone.commit("Unsigned deploy of green")
        try remote.push("main")
        let refused = try apply()
        #expect(refused.status == 1 && refused.stdout.contains("outcome: refused"), "\(refused.stdout)\(refused.stderr)")
        #expect(refused.stderr.contains("commit \(unsigned): it is not signed") && refused.stderr.contains("\(signed.prefix(8)) keeps serving"),
                "\(refused.stderr)")
        #expect(!(try status()).contains("\"green\""), "green was never started")
        #expect(await story.servedBy() == "blue")
        let again = try apply()
        let afterAgain = try status()
        #expect(again.stdout.contains("nothing to do") && !afterAgain.contains("\"green\""), "a refused commit is not tried again")

        // The same deploy signed, then tampered with (its message changed, its signature kept) and pushed: refused.
        try remote.clone.git("reset", "-q", "--hard", signed)
        try remote.clone.write("apps/shop/environment.yaml", try String(contentsOfFile: remote.clone.path + "/apps/shop/environment.yaml",
                                                                         encoding: .utf8) + greenColor + "\n")
        let deploy = try remote.clone.commitSigned("Signed deploy of green", sshKey: key)
        let tampered = try remote.clone.tamper(deploy) { $0.replacingOccurrences(of: "Signed deploy of green", with: "Deploy of green") }
        try remote.push("+main")
        let tamperedResult = try TealBinary.run(["apply", "--repo", url, "--data-dir", story.data, "--verify", "head", "--allowed-signers", allowed],
                                                timeout: 120)
        #expect(tamperedResult.status == 1 && tamperedResult.stderr.contains("commit \(tampered):")
                && tamperedResult.stderr.contains("does not match the signed content"), "\(tamperedResult.stdout)\(tamperedResult.stderr)")
        #expect(!(try status()).contains("\"green\""))

        // The signed deploy itself: applied, green starts.
        try remote.clone.git("reset", "-q", "--hard", deploy)
        try remote.push("+main")
        let applied = try TealBinary.run(["apply", "--repo", url, "--data-dir", story.data, "--verify", "head", "--allowed-signers", allowed],
                                         timeout: 120)
        #expect(applied.status == 0 && applied.stdout.contains("outcome: applied"), "\(applied.stdout)\(applied.stderr)")
        #expect((try status()).contains("\"green\""))

        // --verify all: an unsigned commit under a signed tip is refused, naming the unsigned one.
        try remote.clone.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# unsigned\n")
        let between = try remote.clone.commit("Unsigned in between")
        try remote.clone.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# signed\n")
        try remote.clone.commitSigned("Signed on top", sshKey: key)
        try remote.push("main")
        let all = try apply("all")
        #expect(all.status == 1 && all.stderr.contains("commit \(between): it is not signed") && all.stderr.contains("a commit between"),
                "\(all.stdout)\(all.stderr)")
        // git agrees with each verdict.
        #expect(remote.clone.gitVerifies(deploy, allowedSigners: allowed) && !remote.clone.gitVerifies(between, allowedSigners: allowed))
    }

    /// `teal watch --verify head` following a git daemon: a signed push is served, an unsigned one is refused and
    /// never served, and a signed one on top is served again.
    @Test(.timeLimit(.minutes(4)))
    func theAgentWithVerifyHeadNeverServesAnUnsignedPush() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let daemon = try GitDaemon(base: (remote.bare as NSString).deletingLastPathComponent)
        defer { daemon.stop() }
        let keys = story.data + "-keys"
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let key = try SSHSigningKey(type: "ecdsa", in: keys, name: "deployer")
        let allowed = keys + "/allowed_signers"
        try (key.allowedSigner("deployer@example.com") + "\n").write(toFile: allowed, atomically: true, encoding: .utf8)
        let signed = try remote.clone.commitSigned("Signed start", sshKey: key, allowEmpty: true)
        try remote.push("main")
        let admin = freeLoopbackPort()
        let agent = try Agent(story: story, admin: admin, repo: daemon.url((remote.bare as NSString).lastPathComponent),
                              extra: ["--verify", "head", "--allowed-signers", allowed])
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { agent.output.contains("serving main@sha1:\(signed)") }, "\(agent.output)")
        #expect(await story.servedBy() == "blue")

        // An unsigned switch to a route that would answer nothing: refused, blue keeps serving.
        try remote.clone.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# unsigned\n")
        let unsigned = try remote.clone.commit("Unsigned touch")
        try remote.push("main")
        #expect(await HTTP.eventually(timeout: 30) { agent.output.contains("\(unsigned.prefix(8)): refused") }, "\(agent.output)")
        #expect(agent.output.contains("commit \(unsigned): it is not signed"), "\(agent.output)")
        #expect(!agent.output.contains("serving main@sha1:\(unsigned)"))
        let status = await HTTP.request("http://127.0.0.1:\(admin)/status")
        let head = status?.json?["head"] as? [String: Any]
        #expect((head?["summary"] as? String)?.contains("serving \(signed.prefix(8)); HEAD \(unsigned.prefix(8)) refused") == true,
                "\(head ?? [:])")
        #expect(await story.servedBy() == "blue")

        let fixed = try remote.clone.commitSigned("Signed on top", sshKey: key, allowEmpty: true)
        try remote.push("main")
        #expect(await HTTP.eventually(timeout: 30) { agent.output.contains("serving main@sha1:\(fixed)") }, "\(agent.output)")
    }

    /// A push that changes nothing under apps/ is recorded as a no-op, with a note, and no step runs.
    @Test(.timeLimit(.minutes(4)))
    func aCommitOutsideAppsIsANoop() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let apply = ["apply", "--repo", story.repo.path, "--data-dir", story.data]
        let first = try TealBinary.run(apply, timeout: 120)
        #expect(first.status == 0 && first.stdout.contains("outcome: applied"), "\(first.stdout)\(first.stderr)")
        let applied = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)

        try story.repo.write("README.md", "# the shop's desired state\n")
        try story.repo.commit("Docs")
        try story.repo.write("docs/runbook.md", "restart with teal retry\n")
        let docs = try story.repo.commit("More docs")
        let noop = try TealBinary.run(apply, timeout: 120)
        #expect(noop.status == 0 && noop.stdout.contains("\(docs.prefix(8)): outcome: noop"), "\(noop.stdout)\(noop.stderr)")
        #expect(!noop.stdout.contains("→"), "no step runs: \(noop.stdout)")
        let note = story.note(docs) ?? ""
        #expect(note.hasPrefix("outcome: noop") && note.contains("nothing under apps/ changed since: \(applied)"), "\(note)")
        #expect(await story.servedBy() == "blue")

        // A change under apps/ after it is reconciled in full.
        try story.repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# touched\n")
        let touched = try story.repo.commit("Touch traffic")
        let full = try TealBinary.run(apply, timeout: 120)
        #expect(full.status == 0 && full.stdout.contains("\(touched.prefix(8)): outcome: applied"), "\(full.stdout)\(full.stderr)")
    }

    /// /metrics shows the fetch duration histogram and the age of the last good fetch after fetching from a git
    /// daemon, and fetch errors by reason once the daemon is gone.
    @Test(.timeLimit(.minutes(4)))
    func fetchMetricsAreExposed() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let daemon = try GitDaemon(base: (remote.bare as NSString).deletingLastPathComponent)
        var stopped = false
        defer { if !stopped { daemon.stop() } }
        let admin = freeLoopbackPort()
        let agent = try Agent(story: story, admin: admin, repo: daemon.url((remote.bare as NSString).lastPathComponent))
        defer { agent.kill9() }
        func metrics() async -> String {
            (await HTTP.request("http://127.0.0.1:\(admin)/metrics")).map { String(decoding: $0.body, as: UTF8.self) } ?? ""
        }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")
        let text = await metrics()
        #expect(text.contains("teal_fetch_duration_seconds_count{operation=\"fetch\"}"), "\(text)")
        #expect(text.contains("teal_fetch_duration_seconds_bucket{operation=\"list\""), "\(text)")
        let age = text.split(separator: "\n").first { $0.hasPrefix("teal_fetch_last_success_age_seconds ") }
            .flatMap { Double($0.split(separator: " ")[1]) }
        #expect(age.map { $0 >= 0 && $0 < 30 } == true, "\(text)")
        #expect(!text.contains("teal_fetch_errors_total{"), "no error yet: \(text)")

        daemon.stop()
        stopped = true
        let failing = await HTTP.eventually(timeout: 30) { await metrics().contains("teal_fetch_errors_total{reason=\"network\"}") }
        let afterStop = await metrics()
        #expect(failing, "\(afterStop)\n\(agent.output)")
        try await Task.sleep(for: .seconds(2))
        let later = await metrics().split(separator: "\n").first { $0.hasPrefix("teal_fetch_last_success_age_seconds ") }
            .flatMap { Double($0.split(separator: " ")[1]) }
        #expect(later.map { $0 >= 1.5 } == true, "the age grows while fetches fail: \(later.map { "\($0)" } ?? "none")")
    }
}

/// Fetch failures by reason, as the metric labels them.
struct FetchErrorReasonTests {
    @Test func reasonsAreNamedFromTheFailure() {
        func reason(_ message: String) -> String { RemoteMirrorSource.reason(ReconcileFailure.transient(message)) }
        #expect(reason("listing the branches of git://127.0.0.1:1/x.git timed out after 30.0 seconds") == "timeout")
        #expect(reason("listing the branches of ssh://h/x.git failed: the remote refused the credentials (3 attempts); check the key") == "auth")
        #expect(reason("fetching https://h/x.git failed: the TLS certificate of h is not trusted (give its authority with --ca-file)") == "trust")
        #expect(reason("listing the branches of ssh://h/x.git failed: the SSH host key of h (ssh-ed25519 SHA256:x) is not trusted") == "trust")
        #expect(reason("listing the branches of git://127.0.0.1:1/x.git failed: failed to connect to 127.0.0.1: Connection refused") == "network")
        #expect(RemoteMirrorSource.reason(ReconcileFailure.permanent("branch 'main' does not exist on git://h/x.git")) == "branch_missing")
        #expect(reason("something else") == "other")
    }
}
