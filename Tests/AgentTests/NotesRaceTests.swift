import Foundation
import Testing
import TestSupport

/// Two agents, each with its own data dir, follow one remote over SSH and push their notes to it; both are
/// triggered by webhook at the same moment for every pushed commit, so their note pushes race. The remote refuses
/// any push that is not a fast-forward (`receive.denyNonFastForwards`), so a lost race can only be won by fetching
/// and adding on top.
@Suite(.serialized) struct NotesRaceTests {
    /// `teal watch` with a data dir of its own, its output in a log file.
    final class Watcher {
        let process = Process()
        let log: String
        let admin: Int

        init(url: String, data: String, sshd: SSHServer) throws {
            log = data + "-agent.log"
            admin = freeLoopbackPort()
            FileManager.default.createFile(atPath: log, contents: nil)
            process.executableURL = URL(fileURLWithPath: TealBinary.path)
            process.arguments = ["watch", "--repo", url, "--data-dir", data, "--interval", "5s", "--admin", "127.0.0.1:\(admin)",
                                 "--ssh-key", sshd.clientKey, "--known-hosts", sshd.knownHosts, "--push-notes"]
            let handle = FileHandle(forWritingAtPath: log)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }

        var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        func serves(_ commit: String) -> Bool { output.contains("serving main@sha1:\(commit)") }

        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func twoAgentsPushingNotesToOneRemoteKeepBothOutcomes() async throws {
        let clone = try ScratchRepo()
        defer { clone.cleanup() }
        try clone.write("apps/jobs/environment.yaml", "database: sqlite:jobs.db\ncolors: {}\n")
        let first = try clone.commit("An app with no colors yet")
        let bare = clone.path + "-remote.git"
        try runTool(["git", "clone", "-q", "--bare", clone.path, bare])
        defer { try? FileManager.default.removeItem(atPath: bare) }
        try runTool(["git", "-C", bare, "config", "receive.denyNonFastForwards", "true"])
        try runTool(["git", "-C", bare, "config", "core.logAllRefUpdates", "always"])
        try clone.git("remote", "add", "origin", bare)
        let sshd = try SSHServer()
        defer { sshd.stop() }
        let url = sshd.url(bare)
        let dataA = clone.path + "-agent-a", dataB = clone.path + "-agent-b"
        defer { for dir in [dataA, dataB] { try? FileManager.default.removeItem(atPath: dir) } }
        let a = try Watcher(url: url, data: dataA, sshd: sshd)
        defer { a.kill9() }
        let b = try Watcher(url: url, data: dataB, sshd: sshd)
        defer { b.kill9() }
        #expect(await HTTP.eventually(timeout: 60) { a.serves(first) && b.serves(first) }, "\(a.output)\n---\n\(b.output)")

        var commits = [first]
        for round in 1...4 {
            try clone.write("apps/jobs/round.txt", "round \(round)\n")
            let commit = try clone.commit("Round \(round)")
            try clone.git("push", "-q", "origin", "main")
            commits.append(commit)
            let urlA = "http://127.0.0.1:\(a.admin)/hooks/git", urlB = "http://127.0.0.1:\(b.admin)/hooks/git"
            async let hookA = HTTP.request(urlA, method: "POST")
            async let hookB = HTTP.request(urlB, method: "POST")
            let (replyA, replyB) = await (hookA, hookB)
            #expect(replyA?.status == 202 && replyB?.status == 202)
            #expect(await HTTP.eventually(timeout: 30) { a.serves(commit) && b.serves(commit) }, "\(a.output)\n---\n\(b.output)")
        }

        // Every commit's note on the remote holds one applied record from each agent, whoever pushed last.
        _ = await HTTP.eventually(timeout: 30, every: 0.2) {
            (try? clone.git("fetch", "-q", "origin", "+refs/notes/teal:refs/notes/teal")) != nil
                && commits.allSatisfy { (try? clone.git("notes", "--ref=teal", "show", $0))?.components(separatedBy: "outcome: ").count == 3 }
        }
        for commit in commits {
            let note = try clone.git("notes", "--ref=teal", "show", commit)
            #expect(note.components(separatedBy: "outcome: applied").count - 1 == 2, "\(commit.prefix(8)):\n\(note)")
            #expect(note.contains("agent: ") && note.contains(":\(dataA)\n") && note.contains(":\(dataB)\n"), "\(commit.prefix(8)):\n\(note)")
        }
        // Never forced: every update of the remote's notes ref moved it to a descendant of where it was.
        let reflog = try runTool(["git", "-C", bare, "reflog", "show", "--format=%H", "refs/notes/teal"])
            .split(separator: "\n").map(String.init)
        #expect(reflog.count >= commits.count * 2, "\(reflog)")
        for (newer, older) in zip(reflog, reflog.dropFirst()) {
            #expect((try? runTool(["git", "-C", bare, "merge-base", "--is-ancestor", older, newer])) != nil, "\(older) → \(newer)")
        }
    }
}
