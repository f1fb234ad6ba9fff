import Foundation
import TestSupport
import Testing
@testable import Git

@Suite struct RepositoryTests {
    @Test func readsCommitsTreesAndBlobsNeverTheWorkTree() throws {
        let scratch = try ScratchRepo()
        defer { scratch.cleanup() }
        try scratch.write("apps/shop/a.txt", "one\n")
        let first = try scratch.commit("first")
        try scratch.write("apps/shop/a.txt", "two\n")
        try scratch.write("apps/shop/sub/b.txt", "bee\n")
        let second = try scratch.commit("second")
        try scratch.write("apps/shop/a.txt", "uncommitted\n")

        let repo = try Repository(path: scratch.path)
        #expect(try repo.resolve("main").hex == second)
        #expect(try repo.resolve("HEAD~1").hex == first)
        #expect(try repo.resolve(String(first.prefix(10))).hex == first)
        #expect(try repo.branchTip("main")?.hex == second)
        #expect(try repo.branchTip("nope") == nil)

        let tree = try repo.tree(at: repo.resolve("main"))
        #expect(try tree.contents("apps/shop/a.txt") == Array("two\n".utf8))
        #expect(try tree.contents("apps/shop/missing") == nil)
        #expect(try tree.entries("apps/shop")?.map(\.name).sorted() == ["a.txt", "sub"])
        #expect(try tree.entries("apps/shop")?.first { $0.name == "sub" }?.kind == .directory)
        #expect(try tree.files(under: "apps").map(\.path).sorted() == ["shop/a.txt", "shop/sub/b.txt"])
        let old = try repo.tree(at: repo.resolve("HEAD~1"))
        #expect(try old.contents("apps/shop/a.txt") == Array("one\n".utf8))
        // The blob id matches git's own.
        let gitHash = try scratch.git("rev-parse", "HEAD:apps/shop/a.txt").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try tree.entryID("apps/shop/a.txt")?.hex == gitHash)
        #expect(ObjectID.hashBlob(Array("two\n".utf8)).hex == gitHash)
    }

    @Test func errorsCarryLibgit2Messages() throws {
        let scratch = try ScratchRepo()
        defer { scratch.cleanup() }
        try scratch.write("x", "x")
        try scratch.commit("x")
        let repo = try Repository(path: scratch.path)
        do {
            _ = try repo.resolve("no-such-branch")
            Issue.record("expected an error")
        } catch let error as GitError {
            #expect(error.isNotFound)
            #expect(error.description.contains("no-such-branch"))
        }
        #expect(throws: GitError.self) { try Repository(path: scratch.path + "/does-not-exist") }
    }

    @Test func opensBareRepositories() throws {
        let scratch = try ScratchRepo()
        defer { scratch.cleanup() }
        try scratch.write("apps/a/f", "f")
        let head = try scratch.commit("c")
        let bare = scratch.path + ".git-bare"
        defer { try? FileManager.default.removeItem(atPath: bare) }
        try scratch.git("clone", "-q", "--bare", scratch.path, bare)
        let repo = try Repository(path: bare)
        #expect(repo.isBare)
        #expect(try repo.resolve("main").hex == head)
        #expect(try repo.tree(at: repo.resolve("main")).contents("apps/a/f") == Array("f".utf8))
    }

    @Test func logListsCommitsTouchingAPathNewestFirst() throws {
        let scratch = try ScratchRepo()
        defer { scratch.cleanup() }
        try scratch.write("apps/shop/e", "1")
        let c1 = try scratch.commit("one")
        try scratch.write("README", "docs")
        try scratch.commit("docs only")
        try scratch.write("apps/shop/e", "2")
        let c3 = try scratch.commit("two")
        try scratch.git("checkout", "-q", "-b", "feature")
        try scratch.write("apps/shop/e", "3")
        try scratch.commit("on a branch")
        try scratch.git("checkout", "-q", "main")
        try scratch.git("revert", "--no-edit", "HEAD")
        let c4 = try scratch.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)

        let repo = try Repository(path: scratch.path)
        let log = try repo.log(from: repo.resolve("main"), touching: "apps")
        #expect(log.map(\.id.hex) == [c4, c3, c1])
        #expect(log.first?.subject == "Revert \"two\"")
        #expect(log.last?.authorEmail == "test@example.com")
        #expect(try repo.log(from: repo.resolve("main")).count == 4)
        #expect(try repo.log(from: repo.resolve("feature"), touching: "apps").count == 3)
    }

    @Test func writesAndReadsNotes() throws {
        let scratch = try ScratchRepo()
        defer { scratch.cleanup() }
        try scratch.write("f", "f")
        let head = try scratch.commit("c")
        let repo = try Repository(path: scratch.path)
        let id = try repo.resolve(head)
        #expect(try repo.note(for: id) == nil)
        try repo.setNote("outcome: applied\nstep 1\n", for: id, signature: Signature(name: "teal", email: "teal@localhost"))
        #expect(try repo.note(for: id) == "outcome: applied\nstep 1\n")
        try repo.setNote("outcome: failed\n", for: id, signature: Signature(name: "teal", email: "teal@localhost"))
        // git itself sees the note.
        let shown = try scratch.git("log", "--notes=teal", "-1", "--format=%N")
        #expect(shown.contains("outcome: failed"))
    }

    @Test func createsRepositoriesAndRevertsCommits() throws {
        let dir = NSTemporaryDirectory() + "teal-create-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let repo = try Repository.create(at: dir)
        try "live: blue\n".write(toFile: dir + "/traffic.yaml", atomically: true, encoding: .utf8)
        let sig = Signature(name: "teal", email: "teal@localhost")
        let first = try repo.commitWorkTree(message: "first\n", signature: sig)
        try "live: green\n".write(toFile: dir + "/traffic.yaml", atomically: true, encoding: .utf8)
        let second = try repo.commitWorkTree(message: "switch to green\n", signature: sig)
        #expect(try repo.currentBranch() == "main")
        #expect(try repo.commitInfo(second).parents == [first])

        let revert = try repo.revert(second, onBranch: "main", signature: sig)
        #expect(try repo.branchTip("main") == revert)
        #expect(try repo.tree(at: revert).contents("traffic.yaml") == Array("live: blue\n".utf8))
        #expect(try repo.commitInfo(revert).subject == "Revert \"switch to green\"")
        // The checked-out work tree follows, as with git revert.
        #expect(try String(contentsOfFile: dir + "/traffic.yaml", encoding: .utf8) == "live: blue\n")
        #expect(throws: GitError.self) { try repo.revert(first, onBranch: "main", signature: sig) }
    }
}
