import Foundation
import Logging
import Manifest
import Planning
import ServiceLifecycle
import State

/// The four seams a pass works through.
public struct ReconcileDrivers: Sendable {
    public var source: any Source
    public var schemas: any SchemaBackends
    public var traffic: any TrafficDriver
    public var runtime: any ColorRuntime
    /// Checks commit signatures when the pipeline runs with `verify`; nil when the source cannot.
    public var verifier: (any CommitVerifier)?
    /// Hears `pending` when a new commit's plan starts and each commit's outcome (commit statuses, webhooks).
    public var reporter: any OutcomeReporter

    public init(source: any Source, schemas: any SchemaBackends, traffic: any TrafficDriver, runtime: any ColorRuntime,
                verifier: (any CommitVerifier)? = nil, reporter: any OutcomeReporter = NoReporter()) {
        self.source = source
        self.schemas = schemas
        self.traffic = traffic
        self.runtime = runtime
        self.verifier = verifier
        self.reporter = reporter
    }
}

/// One reconcile pass, as an ordered list of stages:
///
/// 1. resolve the source revision (the branch tip, which commit to aim at, and whether history was rewritten),
/// 2. load the desired state of that commit,
/// 3. observe what runs (state store refined by live probes),
/// 4. plan (pure), and each database's housekeeping (purging what is past the retention window, grants),
/// 5. execute the steps, each journaled before it runs,
/// 6. record the outcome (state store and git note).
///
/// `teal plan` stops after stage 4; `teal apply` and `teal watch` run all six. Each stage lives in its own file
/// under `Stages/`.
public actor ReconcilePipeline {
    public struct Configuration: Sendable {
        /// The host named in notes.
        public var host: String
        /// The agent named in notes (`host:data-dir`), so agents following one repository keep a record each in a
        /// commit's note; nil for none.
        public var agent: String?
        /// How long a stopping color has between SIGTERM and SIGKILL.
        public var stopGrace: Duration
        /// Accept a tip that does not descend from the last applied commit (a force push); refused otherwise.
        public var allowRewrites: Bool
        /// Which commits must carry a trusted signature before they are applied; nil checks none.
        public var verify: VerifyMode?
        /// Test hook: exit hard just before step N (1-based) of this process's passes (`TEAL_CRASH_BEFORE_STEP`).
        public var crashBeforeStep: Int?

        public init(host: String = ProcessInfo.processInfo.hostName, stopGrace: Duration = .seconds(10), allowRewrites: Bool = false,
                    verify: VerifyMode? = nil, crashBeforeStep: Int? = ProcessInfo.processInfo.environment["TEAL_CRASH_BEFORE_STEP"].flatMap(Int.init),
                    agent: String? = nil) {
            self.host = host
            self.agent = agent
            self.stopGrace = stopGrace
            self.allowRewrites = allowRewrites
            self.verify = verify
            self.crashBeforeStep = crashBeforeStep
        }
    }

    let drivers: ReconcileDrivers
    let store: StateStore
    let configuration: Configuration
    let metrics: any ReconcileMetrics
    let logger: Logger
    /// The desired state of the last commit that loaded (a commit's desired state never changes).
    public internal(set) var lastDesired: DesiredState?
    var stepsRun = 0
    /// The commit and apps last reported held, so a held commit is reported once, not every pass.
    var lastHeld: String?
    /// The commit last reported `pending`, so retried passes of one commit report it once.
    var lastPending: String?

    public init(drivers: ReconcileDrivers, store: StateStore, configuration: Configuration = Configuration(),
                metrics: any ReconcileMetrics = NoMetrics(), logger: Logger = Logger(label: "teal.reconcile")) {
        self.drivers = drivers
        self.store = store
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    /// Runs one pass. `progress` hears each step just before it runs.
    public func pass(progress: @Sendable (PlannedStep) -> Void = { _ in }) async -> PassReport {
        let started = Date()
        var tip: String?
        do {
            // 1. Resolve the source revision.
            let revision = try await resolveRevision()
            tip = revision.tip
            guard let target = revision.target else { return PassReport(commit: revision.tip, result: .nothingToDo) }
            if let applied = revision.rewrittenFrom, !configuration.allowRewrites {
                return try await refuse(revision, started: started, because: "the new tip \(revision.tip) does not descend from the last "
                    + "applied commit \(applied): the branch was rewritten (a force push?), so it is not applied and \(applied.prefix(8)) "
                    + "keeps serving; push a commit on top of \(applied.prefix(8)), or start the agent with --allow-rewrites to accept "
                    + "rewritten history")
            }
            if revision.isNew, let refusal = try await verifySignatures(revision) {
                return try await refuse(revision, started: started, because: refusal)
            }
            if revision.isNew, let applied = try await unchangedApps(revision) {
                var audit = AuditRecord(commit: revision.tip, outcome: .noop, host: configuration.host, startedAt: started, finishedAt: started)
                audit.unchangedSince = applied
                return try await record(audit, revision: revision, plan: Plan())
            }

            // 2. Load the desired state.
            let desired: DesiredState
            switch try await loadDesiredState(commit: target) {
            case .loaded(let loaded):
                desired = loaded
            case .invalid(let errors):
                guard revision.isNew else { return PassReport(commit: revision.tip, result: .nothingToDo) }
                var audit = AuditRecord(commit: revision.tip, outcome: .failed, host: configuration.host, startedAt: started,
                                        finishedAt: started)
                audit.errors = errors.diagnostics.map(\.description)
                return try await record(audit, revision: revision, plan: Plan())
            }

            // 3. Observe.
            let observed = try await observe(desired)

            // 4. Plan, then hold back what suspended apps would change.
            let gated = gate(Planner.plan(desired: desired, observed: observed), revision: revision)
            await maintainDatabases(desired)
            let plan = gated.plan
            if plan.isEmpty && !gated.held.isEmpty {
                return PassReport(commit: revision.tip, plan: plan, result: .held(apps: gated.held))
            }
            if plan.isEmpty && !revision.isNew { return PassReport(commit: revision.tip, plan: plan, result: .nothingToDo) }

            // 5. Execute, journaled.
            if revision.isNew && lastPending != revision.tip {
                lastPending = revision.tip
                let apps = Set(plan.steps.map(\.step.app)).sorted()
                drivers.reporter.report(CommitReport(event: .pending, commit: revision.tip, apps: apps.isEmpty ? desired.apps.keys.sorted() : apps,
                                                     message: "reconciling: \(plan.steps.count) step\(plan.steps.count == 1 ? "" : "s") planned",
                                                     host: configuration.host))
            }
            try supersedeInterruptedSteps()
            let execution = try await execute(plan, desired: desired, tip: revision.tip, progress: progress)
            if execution.stoppedForShutdown { return PassReport(commit: revision.tip, plan: plan, result: .stopped) }
            if let failure = execution.failure, failure.error.isTransient {
                logger.warning("\(failure.step.step.summary): \(failure.error); will retry")
                metrics.retried(failure: failure.error)
                return PassReport(commit: revision.tip, plan: plan, result: .willRetry(failure.error))
            }

            if !gated.held.isEmpty, execution.failure == nil {
                // The commit is not reconciled while part of it is held: no outcome until the apps are resumed.
                return PassReport(commit: revision.tip, plan: plan, result: .held(apps: gated.held))
            }

            // 6. Record.
            var audit = AuditRecord(commit: revision.tip, outcome: execution.outcome(refused: !plan.refusals.isEmpty),
                                    host: configuration.host, startedAt: started, finishedAt: started)
            audit.errors = plan.refusals.map(\.description) + (execution.failure.map { ["\($0.step.step.summary): \($0.error)"] } ?? [])
            audit.steps = execution.steps
            if !revision.isNew {
                logger.notice("drift repair toward \(target.prefix(8)): \(audit.outcome.rawValue)", metadata: ["steps": "\(audit.steps.count)"])
                let why = audit.errors.isEmpty ? "" : ": " + audit.errors.joined(separator: "; ")
                event(app: Set(plan.steps.map(\.step.app)).count == 1 ? plan.steps.first?.step.app : nil, commit: target, kind: "drift-repair",
                      "drift repaired toward \(target.prefix(8))\(target != revision.tip ? " (the last good commit; HEAD \(revision.tip.prefix(8)) did not apply)" : ""): "
                        + "\(plan.steps.count) step\(plan.steps.count == 1 ? "" : "s"), \(audit.outcome.rawValue)\(why)")
                return PassReport(commit: revision.tip, plan: plan, result: .repairedDrift(audit))
            }
            return try await record(audit, revision: revision, plan: plan)
        } catch {
            let failure = ReconcileFailure.classify(error)
            if failure.isTransient {
                logger.warning("reconcile pass: \(failure); will retry")
                metrics.retried(failure: failure)
                return PassReport(commit: tip, result: .willRetry(failure))
            }
            logger.error("reconcile pass: \(failure)")
            return PassReport(commit: tip, result: .notReconciled(failure))
        }
    }

    /// A new tip that is not applied at all (rewritten history, a bad signature): outcome `refused` with the
    /// reason, in the state store and the note; the last good state keeps serving.
    func refuse(_ revision: Revision, started: Date, because reason: String) async throws -> PassReport {
        var audit = AuditRecord(commit: revision.tip, outcome: .refused, host: configuration.host, startedAt: started, finishedAt: started)
        audit.errors = [reason]
        return try await record(audit, revision: revision, plan: Plan())
    }

    /// Stages 1–4 only, from the same live observation a pass makes: what a pass would run now.
    public func plan() async throws -> (commit: String, plan: Plan) {
        let tip = try await drivers.source.tip()
        if let refusal = try await verifySignatures(Revision(tip: tip, target: tip, isNew: true)) {
            throw ReconcileFailure.permanent("refused: \(refusal)")
        }
        switch try await loadDesiredState(commit: tip) {
        case .loaded(let desired):
            return (tip, Planner.plan(desired: desired, observed: try await observe(desired)))
        case .invalid(let errors):
            throw errors
        }
    }
}
