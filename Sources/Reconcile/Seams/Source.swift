import Manifest

/// A commit as people name it.
public struct CommitSummary: Hashable, Sendable {
    /// `Name <email>`.
    public var author: String
    public var subject: String

    public init(author: String, subject: String) {
        self.author = author
        self.subject = subject
    }
}

/// Where the desired state comes from: the branch tip, each commit's manifests and app folders, and where the
/// audit notes go. Today a local repository; a fetched mirror of a remote one fits the same shape.
public protocol Source: Sendable {
    /// Where it reads from, for messages (`main@/srv/desired`).
    var description: String { get }
    /// The commit id the followed branch points at now. Throws when the branch does not exist.
    func tip() async throws -> String
    /// Told that the branch has just moved (a webhook): the next `tip()` asks anew, reusing no earlier answer.
    func tipMayHaveMoved() async
    /// The validated desired state of `commit`; throws `ManifestErrors` when it does not load.
    func desiredState(at commit: String) async throws -> DesiredState
    /// First-parent commits after `ancestor` and before `tip` (newest first); empty when `ancestor` is not a
    /// first-parent ancestor of `tip`.
    func commits(after ancestor: String, before tip: String) async throws -> [String]
    /// Whether `ancestor` is `commit` or one of its ancestors (a tip that does not descend from the last applied
    /// commit is a rewritten history).
    func isAncestor(_ ancestor: String, of commit: String) async throws -> Bool
    /// Who made a commit and its subject line, for the audit record; nil when the source cannot tell.
    func summary(of commit: String) async throws -> CommitSummary?
    /// Whether anything under `apps/` differs between two commits (their `apps/` trees); nil when the source
    /// cannot tell, and the commit is reconciled in full.
    func changesApps(from commit: String, to other: String) async throws -> Bool?
    /// The audit note on a commit, if any.
    func note(for commit: String) async throws -> String?
    /// Writes (replaces) the audit note on a commit.
    func setNote(_ text: String, for commit: String) async throws
    /// A read-only folder holding `apps/<app>/` as of `commit`, for a color to run from.
    func workingCopy(app: String, commit: String) async throws -> String
    /// Removes the working copies no color in `keeping` runs from; returns how many went.
    func pruneWorkingCopies(keeping: [(app: String, commit: String)]) async -> Int
}

extension Source {
    public func tipMayHaveMoved() async {}
    public func changesApps(from commit: String, to other: String) async throws -> Bool? { nil }
}
