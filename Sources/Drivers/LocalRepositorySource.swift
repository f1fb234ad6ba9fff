import Desired
import Foundation
import Git
import Manifest
import Reconcile
import State
import Runtime

/// The desired state from a git repository on this host (bare or not), read from the object database through
/// libgit2, never a work tree. Notes are written to the same repository.
public actor LocalRepositorySource: Source {
    public nonisolated let path: String
    public nonisolated let branch: String
    public nonisolated let dataDir: String
    /// One handle for the frequent tip reads (a ref lookup reads the ref from disk each time).
    private var handle: Repository?

    public init(path: String, branch: String, dataDir: String) {
        self.path = path
        self.branch = branch
        self.dataDir = dataDir
    }

    public nonisolated var description: String { "\(branch)@\(path)" }

    private func open() throws -> Repository {
        do {
            return try Repository(path: path)
        } catch let error as GitError {
            // A repository that cannot be opened now (a push rewriting it, a disk hiccup) may open on the next try.
            throw ReconcileFailure.transient("cannot open repository \(path): \(error.message)")
        }
    }

    public func tip() throws -> String {
        if handle == nil { handle = try open() }
        guard let tip = try handle!.branchTip(branch) else {
            throw ReconcileFailure.permanent("branch '\(branch)' does not exist in \(path)")
        }
        return tip.hex
    }

    public func desiredState(at commit: String) throws -> DesiredState {
        guard let id = ObjectID(hex: commit) else { throw ReconcileFailure.permanent("'\(commit)' is not a commit id") }
        return try DesiredStateReader(repository: try open()).read(commit: id)
    }

    public func commits(after ancestor: String, before tip: String) throws -> [String] {
        guard let last = ObjectID(hex: ancestor), var current = ObjectID(hex: tip) else { return [] }
        let repo = try open()
        var result: [String] = []
        while let parent = try repo.commitInfo(current).parents.first, result.count < 1000 {
            if parent == last { return result }
            result.append(parent.hex)
            current = parent
        }
        return []
    }

    public func isAncestor(_ ancestor: String, of commit: String) throws -> Bool {
        guard let a = ObjectID(hex: ancestor), let c = ObjectID(hex: commit) else { return false }
        return try open().isAncestor(a, of: c)
    }

    public func summary(of commit: String) throws -> CommitSummary? {
        guard let id = ObjectID(hex: commit) else { return nil }
        let info = try open().commitInfo(id)
        return CommitSummary(author: "\(info.authorName) <\(info.authorEmail)>", subject: info.subject)
    }

    public func changesApps(from commit: String, to other: String) throws -> Bool? {
        guard let a = ObjectID(hex: commit), let b = ObjectID(hex: other) else { return nil }
        let repo = try open()
        return try repo.tree(at: a).entryID("apps") != repo.tree(at: b).entryID("apps")
    }

    public func note(for commit: String) throws -> String? {
        guard let id = ObjectID(hex: commit) else { return nil }
        return try open().note(for: id)
    }

    /// Writes the record(s) in `text` into the commit's note: a record by the same agent is replaced, records by
    /// other agents are kept (see `AuditNote`).
    public func setNote(_ text: String, for commit: String) throws {
        guard let id = ObjectID(hex: commit) else { return }
        let host = ProcessInfo.processInfo.hostName
        let repository = try open()
        let merged = AuditNote.merging(text, into: try repository.note(for: id))
        try repository.setNote(merged, for: id, signature: Signature(name: "teal", email: "teal@\(host.isEmpty ? "localhost" : host)"))
    }

    public func workingCopy(app: String, commit: String) throws -> String {
        try Materializer(repository: try open(), dataDir: dataDir).folder(app: app, commit: commit)
    }

    public func pruneWorkingCopies(keeping: [(app: String, commit: String)]) -> Int {
        let paths = RuntimePaths(dataDir: dataDir)
        return Materializer.prune(dataDir: dataDir, keeping: Set(keeping.map { paths.appFolder(app: $0.app, commit: $0.commit) })).count
    }
}
