import Foundation
import Manifest
import Planning
import ServiceLifecycle
import State
import Synchronization

/// What stage 5 did with a plan.
struct Execution: Sendable {
    var steps: [AuditRecord.StepRecord] = []
    /// The step that failed and why; later steps did not run.
    var failure: (step: PlannedStep, error: ReconcileFailure)?
    /// Steps left for a later pass because a newer commit arrived.
    var superseded = 0
    var stoppedForShutdown = false
    var ranAny = false

    func outcome(refused: Bool) -> Outcome {
        if failure != nil { return .failed }
        if superseded > 0 { return .superseded }
        return refused ? .refused : .applied
    }
}

/// Raised while a step runs when the plan should stop; the step (a backfill) asks it between batches.
final class StopSignal: Sendable {
    private let state = Atomic<Int>(0)

    var raised: Interruption? {
        switch state.load(ordering: .acquiring) {
        case 1: .newCommit
        case 2: .shutdown
        default: nil
        }
    }

    func raise(_ why: Interruption) {
        _ = state.compareExchange(expected: 0, desired: why == .newCommit ? 1 : 2, ordering: .releasing)
    }
}

/// Why a running plan stops between steps.
enum Interruption {
    /// A newer commit arrived: the rest of the plan is superseded.
    case newCommit
    /// The agent is stopping: the next agent re-plans and finishes.
    case shutdown
}

extension ReconcilePipeline {
    /// Steps an earlier agent journaled and never finished: the level-based plan redoes what is still needed.
    func supersedeInterruptedSteps() throws {
        for entry in try store.unfinishedSteps() {
            try store.markStep(entry.id, .superseded, error: "interrupted; re-planned from the observed state")
        }
    }

    /// Stage 5: journals every step, then runs them in order. Between steps it stops for a newer commit or the
    /// agent's shutdown; after a failure the remaining steps are not run.
    func execute(_ plan: Plan, desired: DesiredState, tip: String,
                 progress: @Sendable (PlannedStep) -> Void) async throws -> Execution {
        var execution = Execution()
        let runner = StepRunner(drivers: drivers, store: store, desired: desired, stopGrace: configuration.stopGrace,
                                metrics: metrics, logger: logger)
        let ids = try store.journal(commit: desired.commit, steps: plan.steps)
        for (index, (id, planned)) in zip(ids, plan.steps).enumerated() {
            if execution.failure != nil {
                try store.markStep(id, .superseded, error: "not run: an earlier step failed")
                continue
            }
            if execution.stoppedForShutdown || execution.superseded > 0 {
                try store.markStep(id, .superseded, error: "interrupted between steps")
                if !execution.stoppedForShutdown { execution.superseded += 1 }
                execution.steps.append(.init(summary: planned.step.summary, seconds: 0, superseded: true))
                continue
            }
            switch await interruption(tip: tip) {
            case .shutdown?:
                execution.stoppedForShutdown = true
                try store.markStep(id, .superseded, error: "the agent stopped between steps")
                continue
            case .newCommit?:
                execution.superseded += 1
                try store.markStep(id, .superseded, error: "a newer commit arrived")
                execution.steps.append(.init(summary: planned.step.summary, seconds: 0, superseded: true))
                continue
            case nil:
                break
            }
            stepsRun += 1
            if !execution.ranAny { try store.setMeta(Self.ranSinceApplied, tip) }
            if configuration.crashBeforeStep == stepsRun {
                logger.critical("exiting hard before step \(stepsRun) (TEAL_CRASH_BEFORE_STEP)")
                _exit(137)
            }
            progress(planned)
            logger.info("step \(index + 1)/\(plan.steps.count): \(planned.step.summary)", metadata: ["reason": "\(planned.reason)"])
            try store.markStep(id, .running)
            let logStart = planned.step.color.flatMap { drivers.runtime.logPosition(app: planned.step.app, color: $0) }
            defer {
                if let color = planned.step.color,
                   let range = drivers.runtime.logRange(app: planned.step.app, color: color, since: logStart) {
                    try? store.saveStepLog(id, range)
                }
            }
            let clock = ContinuousClock()
            let stepStart = clock.now
            execution.ranAny = true
            // A backfill can run for minutes: a newer commit (a revert) or the agent's shutdown stops it within a batch.
            let signal = StopSignal()
            let watcher = planned.step.isInterruptible ? watch(tip: tip, raising: signal) : nil
            defer { watcher?.cancel() }
            do {
                try await runner.run(planned.step, shouldStop: { signal.raised != nil })
                try store.markStep(id, .done)
                let took = seconds(stepStart.duration(to: clock.now))
                execution.steps.append(.init(summary: planned.step.summary, seconds: took))
                event(app: planned.step.app, color: planned.step.color?.rawValue, commit: desired.commit, kind: "step",
                      "\(planned.step.summary) (\(String(format: "%.2f", took))s)")
            } catch where signal.raised != nil && ReconcileFailure.classify(error).isTransient {
                // Stopped on request (a stopped backfill fails transient); a real failure goes the usual way.
                let took = seconds(stepStart.duration(to: clock.now))
                if signal.raised == .shutdown {
                    execution.stoppedForShutdown = true
                    try store.markStep(id, .superseded, error: "the agent stopped during the step; the next pass resumes or undoes it")
                } else {
                    execution.superseded += 1
                    try store.markStep(id, .superseded, error: "a newer commit arrived during the step; it is re-planned from there")
                    execution.steps.append(.init(summary: planned.step.summary, seconds: took, superseded: true))
                }
                logger.notice("\(planned.step.summary): stopped after \(String(format: "%.2f", took))s: \(signal.raised == .shutdown ? "the agent is stopping" : "a newer commit arrived")")
            } catch {
                let failure = ReconcileFailure.classify(error)
                try store.markStep(id, .failed, error: failure.isTransient ? "transient, will retry: \(failure)" : "\(failure)")
                execution.steps.append(.init(summary: planned.step.summary, seconds: seconds(stepStart.duration(to: clock.now)),
                                             error: failure.message))
                execution.failure = (planned, failure)
                event(app: planned.step.app, color: planned.step.color?.rawValue, commit: desired.commit, kind: "step-failed",
                      "\(planned.step.summary): \(failure.isTransient ? "transient, will retry: " : "")\(failure.message)")
                if !failure.isTransient { logger.error("step failed: \(planned.step.summary): \(failure)") }
            }
        }
        if execution.ranAny, let colors = try? store.colors() {
            // Working copies of releases no color runs any more (a stopped color, a replaced spec) go.
            let removed = await drivers.source.pruneWorkingCopies(keeping: colors.map { (app: $0.app, commit: $0.specCommit) })
            if removed > 0 { logger.info("removed \(removed) unused working copies") }
        }
        return execution
    }

    /// Checks for a reason to stop every quarter second while a long step runs, until cancelled.
    func watch(tip: String, raising signal: StopSignal) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                if Task.isCancelled { return }
                if let why = await self.interruption(tip: tip) {
                    if Task.isCancelled { return }
                    signal.raise(why)
                    return
                }
            }
        }
    }

    /// Asked between steps.
    func interruption(tip: String) async -> Interruption? {
        if Task.isShuttingDownGracefully || Task.isCancelled { return .shutdown }
        guard let now = try? await drivers.source.tip() else { return nil }
        return now != tip ? .newCommit : nil
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
