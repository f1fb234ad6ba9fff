import Desired
import Foundation
import Git
import Logging
import Manifest
import Planner
import Runtime
import State

/// One reconcile pass: read the branch tip, plan against what runs, journal and execute the
/// steps, and record the commit's outcome in the state store and as a git note.
public actor Reconciler {
    public struct Configuration: Sendable {
        public var repository: String
        public var branch: String
        public var host: String
        public init(repository: String, branch: String = "main", host: String = ProcessInfo.processInfo.hostName) {
            self.repository = repository
            self.branch = branch
            self.host = host
        }
    }

    public struct Report: Sendable {
        public var commit: String?
        /// nil when nothing needed doing.
        public var record: AuditRecord?
        /// The plan the pass ran (empty when nothing needed doing).
        public var plan = Plan()
        /// What a drift repair on an already reconciled commit did.
        public var drift: AuditRecord?
    }

    let configuration: Configuration
    let dataDir: String
    let store: StateStore
    let logger: Logger
    /// The desired state of the last commit that loaded, for the color supervisor.
    public private(set) var lastDesired: DesiredState?

    public init(configuration: Configuration, dataDir: String, store: StateStore, logger: Logger = Logger(label: "teal.agent")) {
        self.configuration = configuration
        self.dataDir = dataDir
        self.store = store
        self.logger = logger
    }

    /// The branch tip, read cheaply (one ref lookup).
    public func tip() throws -> String? {
        try Repository(path: configuration.repository).branchTip(configuration.branch)?.hex
    }

    /// Why a running plan stops between steps.
    public enum Interruption: Sendable {
        /// A newer commit arrived: this commit's outcome is `superseded`.
        case newCommit
        /// The agent is stopping: the next agent re-plans and finishes.
        case shutdown
    }

    /// The commit the running (or last) pass reconciles.
    public private(set) var currentCommit: String?

    /// Reconciles the branch tip once. `interrupt` is asked between steps; when it answers, the
    /// rest of the plan is left for the next pass.
    public func pass(interrupt: @Sendable () async -> Interruption? = { nil },
                     progress: @Sendable (PlannedStep) -> Void = { _ in }) async throws -> Report {
        let repo = try Repository(path: configuration.repository)
        guard let tip = try repo.branchTip(configuration.branch) else {
            throw GitError(code: -3, operation: "watch", message: "branch '\(configuration.branch)' does not exist")
        }
        currentCommit = tip.hex
        let started = Date()
        let last = try store.meta("last_reconciled_commit")
        let isNewCommit = last != tip.hex
        // Drift passes on a commit that failed or was refused aim at the last commit that applied:
        // the last good state keeps serving, and the failed commit is not retried until a new one comes.
        var target = tip
        if !isNewCommit, let outcome = try store.outcome(commit: tip.hex)?.outcome, outcome == .failed || outcome == .refused {
            guard let good = try store.meta("last_applied_commit").flatMap(ObjectID.init(hex:)) else {
                return Report(commit: tip.hex, record: nil)
            }
            target = good
        }
        var record = AuditRecord(commit: tip.hex, outcome: .applied, host: configuration.host, startedAt: started, finishedAt: started)

        // Interrupted steps of an earlier run: the level-based plan below redoes what is still needed.
        for entry in try store.unfinishedSteps() {
            try store.markStep(entry.id, .superseded, error: "interrupted; re-planned from the observed state")
        }

        let desired: DesiredState
        do {
            if let cached = lastDesired, cached.commit == target.hex {
                desired = cached  // a commit's desired state never changes
            } else {
                desired = try DesiredStateReader(repository: repo).read(commit: target)
            }
        } catch let errors as ManifestErrors {
            guard isNewCommit else { return Report(commit: tip.hex, record: nil) }
            record.outcome = .failed
            record.errors = errors.diagnostics.map(\.description)
            return try finish(record, repo: repo, last: last, plan: Plan())
        }

        lastDesired = desired
        let repositoryPath = configuration.repository, dataDir = dataDir
        let runtime = ReconcilePass(dataDir: dataDir, store: store, router: RouterLauncher(dataDir: dataDir),
                                         materialize: { app, commit in
                                             try Materializer(repository: Repository(path: repositoryPath), dataDir: dataDir)
                                                 .folder(app: app, commit: commit)
                                         }, logger: logger)
        let plan = try await runtime.plan(desired)
        if plan.isEmpty && !isNewCommit { return Report(commit: tip.hex, record: nil) }
        var stoppedForShutdown = false
        let report = try await runtime.reconcile(desired, plan: plan, interrupt: {
            switch await interrupt() {
            case .none: return false
            case .newCommit: return true
            case .shutdown: stoppedForShutdown = true; return true
            }
        }, progress: progress)
        if stoppedForShutdown { return Report(commit: tip.hex, record: nil, plan: plan) }
        record.outcome = report.outcome
        record.errors = plan.refusals.map(\.description) + (report.failure.map { ["\($0.step.step.summary): \($0.error)"] } ?? [])
        record.steps = report.results.map { .init(summary: $0.step.step.summary, seconds: $0.seconds, error: $0.error) }
            + report.skipped.map { .init(summary: $0.step.summary, seconds: 0, superseded: true) }
        if !isNewCommit {
            // Drift repair: recorded in the journal and the log; the commit's outcome and note stay as they were.
            logger.notice("drift repair toward \(target.short): \(record.outcome.rawValue)", metadata: ["steps": "\(record.steps.count)"])
            return Report(commit: tip.hex, record: nil, plan: plan, drift: record)
        }
        return try finish(record, repo: repo, last: last, plan: plan)
    }

    /// Records the outcome, writes the note, and marks commits skipped since the last pass as superseded.
    private func finish(_ record: AuditRecord, repo: Repository, last: String?, plan: Plan) throws -> Report {
        var record = record
        record.finishedAt = Date()
        try store.recordOutcome(commit: record.commit, outcome: record.outcome, detail: record.note, startedAt: record.startedAt,
                                finishedAt: record.finishedAt)
        let signature = Signature(name: "teal", email: "teal@\(configuration.host.isEmpty ? "localhost" : configuration.host)")
        let tip = ObjectID(hex: record.commit)!
        do {
            try repo.setNote(record.note, for: tip, signature: signature)
            if let last, let lastID = ObjectID(hex: last) {
                for skipped in try commits(after: lastID, upTo: tip, repo: repo) where try repo.note(for: skipped) == nil {
                    var note = AuditRecord(commit: skipped.hex, outcome: .superseded, host: configuration.host,
                                           startedAt: record.startedAt, finishedAt: record.startedAt)
                    note.supersededBy = record.commit
                    try repo.setNote(note.note, for: skipped, signature: signature)
                    try store.recordOutcome(commit: skipped.hex, outcome: .superseded, detail: note.note, startedAt: record.startedAt)
                }
            }
        } catch {
            logger.error("could not write the git note: \(error)")
        }
        if record.outcome != .superseded { try store.setMeta("last_reconciled_commit", record.commit) }
        if record.outcome == .applied { try store.setMeta("last_applied_commit", record.commit) }
        logger.info("\(record.commit.prefix(8)): \(record.outcome.rawValue)")
        return Report(commit: record.commit, record: record, plan: plan)
    }

    /// First-parent commits after `last` and before `tip`, when `last` is an ancestor.
    private func commits(after last: ObjectID, upTo tip: ObjectID, repo: Repository) throws -> [ObjectID] {
        var result: [ObjectID] = []
        var current = tip
        while let parent = try repo.commitInfo(current).parents.first, result.count < 1000 {
            if parent == last { return result }
            result.append(parent)
            current = parent
        }
        return []
    }
}
