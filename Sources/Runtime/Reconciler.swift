import Foundation
import Logging
import Manifest
import Planner
import State

/// What one reconcile pass did.
public struct ReconcileReport: Sendable {
    public var commit: String
    public var plan: Plan
    public var completed: [PlannedStep]
    /// The step that failed and why; later steps did not run.
    public var failure: (step: PlannedStep, error: String)?
    public var outcome: Outcome
    public var startedAt: Date
    public var finishedAt: Date

    /// The outcome and what was done, one item a line (the text of the commit's teal note).
    public var note: String {
        var lines = ["outcome: \(outcome.rawValue)"]
        let format = ISO8601DateFormatter()
        lines.append("started: \(format.string(from: startedAt))")
        lines.append("finished: \(format.string(from: finishedAt))")
        for step in completed { lines.append("done: \(step.step.summary)") }
        if let failure { lines.append("failed: \(failure.step.step.summary): \(failure.error)") }
        for refusal in plan.refusals { lines.append("refused: \(refusal.app): \(refusal.message) (hint: \(refusal.hint))") }
        if plan.steps.isEmpty && plan.refusals.isEmpty { lines.append("nothing to do") }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// One level-based pass: observe, plan, journal, run the steps, record the outcome.
public final class Reconciler {
    public let dataDir: String
    public let store: StateStore
    public let router: RouterLauncher
    private let materialize: (_ app: String, _ commit: String) throws -> String
    private let logger: Logger

    public init(dataDir: String, store: StateStore, router: RouterLauncher,
                materialize: @escaping (_ app: String, _ commit: String) throws -> String,
                logger: Logger = Logger(label: "teal.reconcile")) {
        self.dataDir = dataDir
        self.store = store
        self.router = router
        self.materialize = materialize
        self.logger = logger
    }

    /// The plan for `desired` against what runs now.
    public func plan(_ desired: DesiredState) async throws -> Plan {
        let observed = try await StateObserver(dataDir: dataDir, store: store).observe(desired: desired)
        return Planner.plan(desired: desired, observed: observed)
    }

    /// Reconciles once; `progress` hears each step before it runs.
    public func reconcile(_ desired: DesiredState, progress: (PlannedStep) -> Void = { _ in }) async throws -> ReconcileReport {
        let startedAt = Date()
        let plan = try await plan(desired)
        var report = ReconcileReport(commit: desired.commit, plan: plan, completed: [], failure: nil,
                                     outcome: plan.refusals.isEmpty ? .applied : .refused, startedAt: startedAt, finishedAt: startedAt)
        let executor = StepExecutor(dataDir: dataDir, store: store, desired: desired, router: router, materialize: materialize,
                                    logger: logger)
        let ids = try store.journal(commit: desired.commit, steps: plan.steps)
        for (index, (id, planned)) in zip(ids, plan.steps).enumerated() {
            if report.failure != nil {
                try store.markStep(ids[index], .superseded)
                continue
            }
            progress(planned)
            try store.markStep(id, .running)
            do {
                try await executor.run(planned.step)
                try store.markStep(id, .done)
                report.completed.append(planned)
            } catch {
                try store.markStep(id, .failed, error: "\(error)")
                report.failure = (planned, "\(error)")
                report.outcome = .failed
            }
        }
        report.finishedAt = Date()
        try store.recordOutcome(commit: desired.commit, outcome: report.outcome, detail: report.note,
                                startedAt: startedAt, finishedAt: report.finishedAt)
        return report
    }
}
