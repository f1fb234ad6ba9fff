import Foundation
import Testing
import TestSupport

/// A desired-state repository on another host: a bare remote served by a real sshd or git daemon, pushed to
/// from a separate clone, watched by the real agent through its mirror.
@Suite(.serialized) struct RemoteSourceTests {
    /// The story's repository as a bare remote, and a clone of it a user pushes from.
    struct Remote {
        let bare: String
        let clone: ScratchRepo

        init(_ story: Story) throws {
            bare = story.repo.path + "-remote.git"
            try runTool(["git", "clone", "-q", "--bare", story.repo.path, bare])
            clone = try ScratchRepo()
            try clone.git("remote", "add", "origin", bare)
            try clone.git("fetch", "-q", "origin")
            try clone.git("reset", "-q", "--hard", "origin/main")
        }

        func push(_ arguments: String...) throws { try runTool(["git", "-C", clone.path, "push", "-q", "origin"] + arguments) }

        func cleanup() {
            clone.cleanup()
            try? FileManager.default.removeItem(atPath: bare)
        }
    }

    /// Over SSH: the first commit and a deploy pushed from the user's clone are applied through the mirror, and
    /// both outcomes come back to the remote's refs/notes/teal.
    @Test(.timeLimit(.minutes(4)))
    func overSSHCommitsAreAppliedAndTheirNotesPushedBack() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let sshd = try SSHServer()
        defer { sshd.stop() }
        let apply = ["apply", "--repo", sshd.url(remote.bare), "--data-dir", story.data,
                     "--ssh-key", sshd.clientKey, "--known-hosts", sshd.knownHosts, "--push-notes"]
        let first = try TealBinary.run(apply, timeout: 120)
        #expect(first.status == 0 && first.stdout.contains("outcome: applied"), "\(first.stdout)\(first.stderr)")
        #expect(await story.servedBy() == "blue")

        let env = try String(contentsOfFile: remote.clone.path + "/apps/shop/environment.yaml", encoding: .utf8)
        try remote.clone.write("apps/shop/environment.yaml", env.replacingOccurrences(of: "interval: 500ms", with: "interval: 100ms")
            .replacingOccurrences(of: "drain: 5s", with: "drain: 2s") + greenColor + "\n")
        let deploy = try remote.clone.commit("Deploy green")
        try remote.push("main")
        let second = try TealBinary.run(apply, timeout: 120)
        #expect(second.status == 0 && second.stdout.contains("outcome: applied"), "\(second.stdout)\(second.stderr)")

        try remote.clone.git("fetch", "-q", "origin", "+refs/notes/teal:refs/notes/teal")
        #expect(try remote.clone.git("notes", "--ref=teal", "show", deploy).hasPrefix("outcome: applied"))
        let log = try remote.clone.git("log", "--notes=teal", "--format=%N")
        #expect(log.components(separatedBy: "outcome: applied").count - 1 == 2, "both commits carry their outcome on the remote:\n\(log)")

        // A revert pushed from the clone rolls the deploy back.
        try remote.clone.git("revert", "--no-edit", "HEAD")
        try remote.push("main")
        let third = try TealBinary.run(apply, timeout: 120)
        #expect(third.status == 0 && third.stdout.contains("outcome: applied"), "\(third.stdout)\(third.stderr)")
        #expect(await story.servedBy() == "blue")
    }

    /// The agent follows a remote served by git daemon: a push is fetched, applied and served.
    @Test(.timeLimit(.minutes(4)))
    func theAgentFollowsAPushToAGitDaemon() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let daemon = try GitDaemon(base: (remote.bare as NSString).deletingLastPathComponent)
        defer { daemon.stop() }
        let agent = try Agent(story: story, admin: freeLoopbackPort(), repo: daemon.url((remote.bare as NSString).lastPathComponent))
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")
        try remote.clone.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# pushed\n")
        let pushed = try remote.clone.commit("Touch traffic")
        try remote.push("main")
        #expect(await HTTP.eventually(timeout: 30) { agent.output.contains("serving main@sha1:\(pushed)") }, "\(agent.output)")
        #expect(await story.servedBy() == "blue")
    }

    @Test(.timeLimit(.minutes(2)))
    func sshTrustsOnlyKnownOrPinnedHostKeysAndOnlyTheRightClientKey() throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let sshd = try SSHServer()
        defer { sshd.stop() }
        func validate(_ options: [String]) throws -> TealBinary.Result {
            try TealBinary.run(["validate", "--repo", sshd.url(remote.bare), "--data-dir", story.data] + options, timeout: 60)
        }
        let good = try validate(["--ssh-key", sshd.clientKey, "--known-hosts", sshd.knownHosts])
        #expect(good.status == 0, "\(good.stderr)")

        let unknown = try validate(["--ssh-key", sshd.clientKey])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("host key of 127.0.0.1") && unknown.stderr.contains(sshd.fingerprint), "\(unknown.stderr)")

        let pinned = try validate(["--ssh-key", sshd.clientKey, "--host-key", "SHA256:AAAAnotthekeyAAAA", "--host-key", sshd.fingerprint])
        #expect(pinned.status == 0, "\(pinned.stderr)")
        let mismatch = try validate(["--ssh-key", sshd.clientKey, "--host-key", "SHA256:AAAAnotthekeyAAAA"])
        #expect(mismatch.status == 1 && mismatch.stderr.contains("not trusted"), "\(mismatch.stderr)")

        let wrongKey = try validate(["--ssh-key", sshd.otherKey, "--known-hosts", sshd.knownHosts])
        #expect(wrongKey.status == 1 && wrongKey.stderr.contains("refused the credentials"), "\(wrongKey.stderr)")
        #expect(!wrongKey.stderr.contains("PRIVATE KEY"))
    }

    /// A server that refuses RSA signatures: the error says to use ed25519 or ECDSA; an ed25519 key still works.
    @Test(.timeLimit(.minutes(2)))
    func anRSAKeyTheServerRefusesIsNamedWithTheWayOut() throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let sshd = try SSHServer(acceptedKeyTypes: "ssh-ed25519")
        defer { sshd.stop() }
        func validate(_ key: String) throws -> TealBinary.Result {
            try TealBinary.run(["validate", "--repo", sshd.url(remote.bare), "--data-dir", story.data, "--ssh-key", key,
                                "--known-hosts", sshd.knownHosts], timeout: 60)
        }
        let rsa = try validate(sshd.rsaKey)
        #expect(rsa.status == 1)
        #expect(rsa.stderr.contains("is an RSA key") && rsa.stderr.contains("use an ed25519 or ECDSA key"), "\(rsa.stderr)")
        #expect(!rsa.stderr.contains("PRIVATE KEY"))
        let ed25519 = try validate(sshd.clientKey)
        #expect(ed25519.status == 0, "\(ed25519.stderr)")
        // A refused ed25519 key gets no such hint.
        let other = try validate(sshd.otherKey)
        #expect(other.status == 1 && !other.stderr.contains("RSA"), "\(other.stderr)")
    }

    @Test(.timeLimit(.minutes(3)))
    func aForcePushIsRefusedAndADeletedBranchIsAnError() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let remote = try Remote(story)
        defer { remote.cleanup() }
        let daemon = try GitDaemon(base: (remote.bare as NSString).deletingLastPathComponent)
        defer { daemon.stop() }
        let url = daemon.url((remote.bare as NSString).lastPathComponent)
        func apply(_ extra: [String] = []) throws -> TealBinary.Result {
            try TealBinary.run(["apply", "--repo", url, "--data-dir", story.data] + extra, timeout: 120)
        }
        let first = try apply()
        #expect(first.status == 0 && first.stdout.contains("outcome: applied"), "\(first.stdout)\(first.stderr)")
        let applied = try remote.clone.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)

        // History rewritten on the remote: a new root commit force-pushed over the applied one.
        try remote.clone.git("checkout", "-q", "--orphan", "rewritten")
        let rewritten = try remote.clone.commit("Rewritten history")
        try remote.push("+rewritten:main")
        let refused = try apply()
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("outcome: refused"), "\(refused.stdout)")
        #expect(refused.stderr.contains(rewritten) && refused.stderr.contains(applied) && refused.stderr.contains("--allow-rewrites"),
                "\(refused.stderr)")
        #expect(await story.servedBy() == "blue", "the last good state keeps serving")
        let accepted = try apply(["--allow-rewrites"])
        #expect(accepted.status == 0 || accepted.stdout.contains("nothing to do"), "\(accepted.stdout)\(accepted.stderr)")

        // The branch deleted on the remote: an error, never the old tip.
        try runTool(["git", "-C", remote.bare, "update-ref", "-d", "refs/heads/main"])
        let deleted = try apply()
        #expect(deleted.status == 1)
        #expect(deleted.stderr.contains("branch 'main' does not exist on \(url)"), "\(deleted.stderr)")
    }

    @Test(.timeLimit(.minutes(2)))
    func anUnreachableRemoteIsTransientAndNeverAnOutcome() throws {
        let story = try Story()
        defer { story.cleanup() }
        let port = freeLoopbackPort()
        let result = try TealBinary.run(["apply", "--repo", "git://127.0.0.1:\(port)/nothing.git", "--data-dir", story.data,
                                         "--attempts", "2"], timeout: 60)
        #expect(result.status == 1)
        #expect(result.stderr.contains("git://127.0.0.1:\(port)/nothing.git failed") && result.stderr.contains("transient"),
                "\(result.stderr)")
        #expect(!result.stdout.contains("outcome:"))
    }
}

