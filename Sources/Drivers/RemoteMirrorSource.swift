import Crypto
import Foundation
import Git
import Manifest
import Reconcile
import Synchronization

/// The desired state from a remote repository: a bare mirror in the data dir, fetched with prune through
/// libgit2. Each tip read lists the remote's refs (one round trip, no objects) and fetches only when the
/// branch moved; trees are read from the mirror, never a work tree. A fetch that fails is a transient failure
/// (retried, never a commit's outcome); a branch the remote deleted is an error, never a silent reuse of the
/// old tip. Notes are written to the mirror and, when enabled, pushed to the remote's `refs/notes/teal`.
public actor RemoteMirrorSource: Source {
    public nonisolated let url: String
    public nonisolated let branch: String
    public nonisolated let settings: RemoteSettings
    /// The mirror's folder.
    public nonisolated let path: String
    private let local: LocalRepositorySource
    /// The longest a network operation may take; libgit2 1.5 has no timeout of its own and an SSH read can wait
    /// forever on a connection the server dropped.
    public var networkTimeout: Duration = .seconds(30)
    private var lastCheck: (at: ContinuousClock.Instant, tip: String)?
    /// Tip reads closer together than this reuse the last answer (between-step checks of one pass).
    private let recheck: Duration = .milliseconds(500)
    /// Hears each list and fetch: durations, errors by reason.
    private let metrics: any ReconcileMetrics

    public init(url: String, branch: String, dataDir: String, settings: RemoteSettings, metrics: any ReconcileMetrics = NoMetrics()) {
        self.metrics = metrics
        self.url = url
        self.branch = branch
        self.settings = settings
        let digest = SHA256.hash(data: Data(url.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
        path = "\(dataDir)/mirrors/\(digest).git"
        local = LocalRepositorySource(path: path, branch: branch, dataDir: dataDir)
    }

    public nonisolated var description: String { "\(branch)@\(RemoteMirror.redacted(url))" }

    /// Runs one network operation on a mirror handle of its own, on a thread of its own, for at most
    /// `networkTimeout`; a handle left behind by a timed-out operation is never used again.
    private func network<T: Sendable>(_ what: String, _ work: @escaping @Sendable (RemoteMirror) throws -> T) async throws -> T {
        let path = path, url = url, timeout = networkTimeout
        let redacted = RemoteMirror.redacted(url)
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let once = ResumeOnce(continuation)
            Thread.detachNewThread {
                once.resume(with: Result {
                    do {
                        return try work(try RemoteMirror(path: path, url: url))
                    } catch let error as GitError {
                        throw ReconcileFailure.transient("\(what) \(redacted) failed: \(error.message)")
                    }
                })
            }
            Task {
                try? await Task.sleep(for: timeout)
                once.resume(with: .failure(ReconcileFailure.transient("\(what) \(redacted) timed out after \(timeout)")))
            }
        }
    }

    /// A webhook said the branch moved: the answer of a list less than `recheck` ago is not reused.
    public func tipMayHaveMoved() { lastCheck = nil }

    public func tip() async throws -> String {
        let clock = ContinuousClock()
        if let lastCheck, clock.now - lastCheck.at < recheck { return lastCheck.tip }
        let branch = branch
        do {
            let auth = try settings.authentication(for: url)
            let (remoteTip, mirrored) = try await measured("list") {
                try await self.network("listing the branches of") { mirror -> (ObjectID?, ObjectID?) in
                    (try mirror.branches(auth)[branch], try mirror.repository.branchTip(branch))
                }
            }
            guard let remoteTip else {
                throw ReconcileFailure.permanent("branch '\(branch)' does not exist on \(RemoteMirror.redacted(url))"
                    + (mirrored.map { " (it was at \($0.short)); the last good state keeps serving" } ?? ""))
            }
            if mirrored != remoteTip {
                try await measured("fetch") { try await self.network("fetching") { mirror in try mirror.fetch(auth) } }
            }
            lastCheck = (clock.now, remoteTip.hex)
            return remoteTip.hex
        } catch {
            metrics.fetchFailed(reason: Self.reason(error))
            throw error
        }
    }

    /// Runs one list or fetch and reports how long it took when it succeeded.
    private func measured<T: Sendable>(_ operation: String, _ work: () async throws -> T) async throws -> T {
        let clock = ContinuousClock()
        let started = clock.now
        let result = try await work()
        let took = clock.now - started
        metrics.fetched(operation: operation, seconds: Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18)
        return result
    }

    /// Why a list or fetch failed, as a metric label: timeout, auth, trust, network, branch_missing or other.
    static func reason(_ error: any Error) -> String {
        let message = "\(error)"
        if message.contains("timed out") { return "timeout" }
        if message.contains("does not exist on") { return "branch_missing" }
        if message.contains("credentials") || message.contains("password") || message.contains("bearer token")
            || message.contains("asks for an SSH key") || message.contains("authentication") { return "auth" }
        if message.contains("host key") || message.contains("certificate") { return "trust" }
        if message.contains("connect") || message.contains("resolve") || message.contains("refused") || message.contains("unreachable")
            || message.contains("network") || message.contains("socket") { return "network" }
        return "other"
    }

    public func desiredState(at commit: String) async throws -> DesiredState { try await local.desiredState(at: commit) }
    public func commits(after ancestor: String, before tip: String) async throws -> [String] {
        try await local.commits(after: ancestor, before: tip)
    }
    public func isAncestor(_ ancestor: String, of commit: String) async throws -> Bool { try await local.isAncestor(ancestor, of: commit) }
    public func summary(of commit: String) async throws -> CommitSummary? { try await local.summary(of: commit) }
    public func changesApps(from commit: String, to other: String) async throws -> Bool? { try await local.changesApps(from: commit, to: other) }
    public func note(for commit: String) async throws -> String? { try await local.note(for: commit) }

    /// Writes the note on top of the remote's notes and pushes it (never forced); a push that loses a race with
    /// another agent fetches and tries again.
    public func setNote(_ text: String, for commit: String) async throws {
        guard settings.pushNotes else { return try await local.setNote(text, for: commit) }
        var lastError: (any Error)?
        for _ in 0..<4 {
            do {
                let auth = try settings.authentication(for: url)
                try await network("fetching the notes of") { mirror in
                    try mirror.fetch(auth)
                    try mirror.repository.adoptNotes(from: "refs/notes/remote-teal")
                }
                try await local.setNote(text, for: commit)
                try await network("pushing the note to") { mirror in try mirror.push(Repository.defaultNotesRef, auth) }
                return
            } catch {
                lastError = error
                try? await Task.sleep(for: .milliseconds(Int.random(in: 50...250)))
            }
        }
        throw ReconcileFailure.transient("could not push the note on \(commit.prefix(8)) to \(RemoteMirror.redacted(url)): \(lastError.map { "\($0)" } ?? "")")
    }

    public func workingCopy(app: String, commit: String) async throws -> String { try await local.workingCopy(app: app, commit: commit) }
    public func pruneWorkingCopies(keeping: [(app: String, commit: String)]) async -> Int { await local.pruneWorkingCopies(keeping: keeping) }
}

/// A continuation resumed by whichever comes first, the work or its deadline.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>

    init(_ continuation: CheckedContinuation<T, any Error>) { self.continuation = Mutex(continuation) }

    func resume(with result: Result<T, any Error>) {
        continuation.withLock { pending in
            pending?.resume(with: result)
            pending = nil
        }
    }
}
