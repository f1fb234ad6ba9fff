import Desired
import Foundation
import Git
import Logging
import Manifest
import Planner
import State

/// Runs one step of a plan for real (processes, router, schema engine).
public protocol StepExecutor: Sendable {
    func execute(_ step: Step, desired: DesiredState) async throws
}

/// Reads what actually runs: the state store refined by live probes.
public protocol StateObserver: Sendable {
    func observe(desired: DesiredState) async throws -> ObservedState
}

/// One reconcile pass: read the branch tip, plan against what runs, journal and execute the
/// steps, and record the commit's outcome in the state store and as a git note.
public actor Reconciler {
    public struct Configuration: Sendable {
        public var repository: String
        public var branch: String
        public var host: String
        /// Test hook: exit hard just before running step N (1-based) of a pass.
        public var crashBeforeStep: Int?

        public init(repository: String, branch: String = "main", host: String = ProcessInfo.processInfo.hostName,
                    crashBeforeStep: Int? = ProcessInfo.processInfo.environment["TEAL_CRASH_BEFORE_STEP"].flatMap(Int.init)) {
            self.repository = repository
            self.branch = branch
            self.host = host
            self.crashBeforeStep = crashBeforeStep
        }
    }

    public struct Report: Sendable {
        public var commit: String?
        /// nil when nothing needed doing.
        public var record: AuditRecord?
    }

    let configuration: Configuration
    let store: StateStore
    let executor: any StepExecutor
    let observer: any StateObserver
    let logger: Logger
    private var stepsRun = 0

    public init(configuration: Configuration, store: StateStore, executor: any StepExecutor, observer: any StateObserver,
                logger: Logger = Logger(label: "teal.agent")) {
        self.configuration = configuration
        self.store = store
        self.executor = executor
        self.observer = observer
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
    public func pass(interrupt: @Sendable () async -> Interruption? = { nil }) async throws -> Report {
        let repo = try Repository(path: configuration.repository)
        guard let tip = try repo.branchTip(configuration.branch) else {
            throw GitError(code: -3, operation: "watch", message: "branch '\(configuration.branch)' does not exist")
        }
        currentCommit = tip.hex
        let started = Date()
        let last = try store.meta("last_reconciled_commit")
        let isNewCommit = last != tip.hex
        // A commit that failed or was refused is not retried every pass: the next commit fixes it.
        if !isNewCommit, let outcome = try store.outcome(commit: tip.hex)?.outcome, outcome == .failed || outcome == .refused {
            return Report(commit: tip.hex, record: nil)
        }
        var record = AuditRecord(commit: tip.hex, outcome: .applied, host: configuration.host, startedAt: started, finishedAt: started)

        // Interrupted steps of an earlier run: the level-based plan below redoes what is still needed.
        for entry in try store.unfinishedSteps() {
            try store.markStep(entry.id, .superseded, error: "interrupted; re-planned from the observed state")
        }

        let desired: DesiredState
        do {
            desired = try DesiredStateReader(repository: repo).read(commit: tip)
        } catch let errors as ManifestErrors {
            guard isNewCommit else { return Report(commit: tip.hex, record: nil) }
            record.outcome = .failed
            record.errors = errors.diagnostics.map(\.description)
            return try finish(record, repo: repo, last: last)
        }

        let observed = try await observer.observe(desired: desired)
        let plan = Planner.plan(desired: desired, observed: observed)
        if plan.isEmpty && !isNewCommit { return Report(commit: tip.hex, record: nil) }
        record.errors = plan.refusals.map(\.description)
        if !plan.refusals.isEmpty { record.outcome = .refused }

        let ids = try store.journal(commit: tip.hex, steps: plan.steps)
        for (index, (planned, id)) in zip(plan.steps, ids).enumerated() {
            if let interruption = await interrupt() {
                for later in ids[index...] {
                    try store.markStep(later, .superseded, error: interruption == .shutdown ? "the agent stopped" : "a newer commit arrived")
                }
                if interruption == .shutdown { return Report(commit: tip.hex, record: nil) }
                record.steps += plan.steps[index...].map { .init(summary: $0.step.summary, seconds: 0, superseded: true) }
                record.outcome = .superseded
                break
            }
            stepsRun += 1
            if let crash = configuration.crashBeforeStep, crash == stepsRun {
                logger.critical("exiting hard before step \(stepsRun) (TEAL_CRASH_BEFORE_STEP)")
                exit(137)
            }
            try store.markStep(id, .running)
            logger.info("step \(index + 1)/\(plan.steps.count): \(planned.step.summary)", metadata: ["reason": "\(planned.reason)"])
            let stepStart = Date()
            do {
                try await executor.execute(planned.step, desired: desired)
                try store.markStep(id, .done)
                record.steps.append(.init(summary: planned.step.summary, seconds: Date().timeIntervalSince(stepStart)))
            } catch {
                let message = "\(error)"
                try store.markStep(id, .failed, error: message)
                record.steps.append(.init(summary: planned.step.summary, seconds: Date().timeIntervalSince(stepStart), error: message))
                record.errors.append("\(planned.step.summary): \(message)")
                record.outcome = .failed
                for later in ids[(index + 1)...] { try store.markStep(later, .superseded, error: "not run: an earlier step failed") }
                logger.error("step failed: \(planned.step.summary): \(message)")
                break
            }
        }
        if !isNewCommit && record.outcome == .applied {
            // Drift repaired on an already reconciled commit: recorded in the journal, the note stays.
            return Report(commit: tip.hex, record: record)
        }
        return try finish(record, repo: repo, last: last)
    }

    /// Records the outcome, writes the note, and marks commits skipped since the last pass as superseded.
    private func finish(_ record: AuditRecord, repo: Repository, last: String?) throws -> Report {
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
        logger.info("\(record.commit.prefix(8)): \(record.outcome.rawValue)")
        return Report(commit: record.commit, record: record)
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
