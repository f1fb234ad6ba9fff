import Foundation
import Logging
import Manifest
import Planner
import State

/// What one reconcile pass did.
public struct ReconcileReport: Sendable {
    /// A step that ran, with how long it took.
    public struct StepResult: Sendable {
        public var step: PlannedStep
        public var seconds: Double
        public var error: String?
    }

    public var commit: String
    public var plan: Plan
    /// The steps that ran, in order; the last one carries the error when a step failed.
    public var results: [StepResult] = []
    /// Steps left for a later pass because the pass was interrupted.
    public var skipped: [PlannedStep] = []
    public var outcome: Outcome
    public var startedAt: Date
    public var finishedAt: Date

    public var completed: [PlannedStep] { results.filter { $0.error == nil }.map(\.step) }

    /// The step that failed and why; later steps did not run.
    public var failure: (step: PlannedStep, error: String)? {
        results.last.flatMap { r in r.error.map { (r.step, $0) } }
    }
}

/// One level-based pass over a desired state (no git): observe, plan, journal, run the steps, record the outcome.
/// `teal apply` runs one; the agent runs one per commit (and per drift check).
public final class ReconcilePass {
    public let dataDir: String
    public let store: StateStore
    public let router: RouterLauncher
    private let materialize: (_ app: String, _ commit: String) throws -> String
    private let logger: Logger
    /// Test hook: exit hard just before running step N (1-based) of this process's passes (`TEAL_CRASH_BEFORE_STEP`).
    public var crashBeforeStep = ProcessInfo.processInfo.environment["TEAL_CRASH_BEFORE_STEP"].flatMap(Int.init)
    private var stepsRun = 0

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

    /// Reconciles once. `interrupt` is asked between steps (a newer commit, a shutdown): when it
    /// answers true the remaining steps are journaled as superseded and left to the next pass.
    /// `progress` hears each step before it runs.
    public func reconcile(_ desired: DesiredState, plan given: Plan? = nil, interrupt: () async -> Bool = { false },
                          progress: (PlannedStep) -> Void = { _ in }) async throws -> ReconcileReport {
        let startedAt = Date()
        let plan: Plan
        if let given { plan = given } else { plan = try await self.plan(desired) }
        var report = ReconcileReport(commit: desired.commit, plan: plan, outcome: plan.refusals.isEmpty ? .applied : .refused,
                                     startedAt: startedAt, finishedAt: startedAt)
        let executor = StepExecutor(dataDir: dataDir, store: store, desired: desired, router: router, materialize: materialize,
                                    logger: logger)
        let ids = try store.journal(commit: desired.commit, steps: plan.steps)
        for (index, (id, planned)) in zip(ids, plan.steps).enumerated() {
            if report.failure != nil {
                try store.markStep(id, .superseded, error: "not run: an earlier step failed")
                continue
            }
            var stop = !report.skipped.isEmpty
            if !stop { stop = await interrupt() }
            if stop {
                try store.markStep(id, .superseded, error: "interrupted between steps")
                report.skipped.append(planned)
                continue
            }
            stepsRun += 1
            if crashBeforeStep == stepsRun {
                logger.critical("exiting hard before step \(stepsRun) (TEAL_CRASH_BEFORE_STEP)")
                _exit(137)
            }
            progress(planned)
            logger.info("step \(index + 1)/\(plan.steps.count): \(planned.step.summary)", metadata: ["reason": "\(planned.reason)"])
            try store.markStep(id, .running)
            let stepStart = Date()
            do {
                try await executor.run(planned.step)
                try store.markStep(id, .done)
                report.results.append(.init(step: planned, seconds: Date().timeIntervalSince(stepStart)))
            } catch {
                try store.markStep(id, .failed, error: "\(error)")
                report.results.append(.init(step: planned, seconds: Date().timeIntervalSince(stepStart), error: "\(error)"))
                report.outcome = .failed
                logger.error("step failed: \(planned.step.summary): \(error)")
            }
        }
        if !report.skipped.isEmpty && report.outcome == .applied { report.outcome = .superseded }
        if !report.results.isEmpty, let colors = try? store.colors() {
            // Working copies of releases no color runs any more (a stopped color, a replaced spec) go.
            let paths = RuntimePaths(dataDir: dataDir)
            let removed = Materializer.prune(dataDir: dataDir,
                                             keeping: Set(colors.map { paths.appFolder(app: $0.app, commit: $0.specCommit) }))
            if !removed.isEmpty { logger.info("removed \(removed.count) unused working copies") }
        }
        report.finishedAt = Date()
        return report
    }
}
