import Planning
import State

/// What one reconcile pass did.
public struct PassReport: Sendable {
    public enum Result: Sendable {
        /// The observed state matched the commit already reconciled.
        case nothingToDo
        /// The commit's reconcile ended: its audit record was written to the state store and as a note.
        case ended(AuditRecord)
        /// A commit already reconciled was brought back after drift; its outcome and note stay as they were.
        case repairedDrift(AuditRecord)
        /// A transient failure: no outcome was written, the pass is tried again after a backoff.
        case willRetry(ReconcileFailure)
        /// The agent is stopping: the rest of the plan is left to the next agent, no outcome was written.
        case stopped
        /// A permanent failure before any commit could be reconciled (the source cannot be read).
        case notReconciled(ReconcileFailure)
        /// Apps are suspended and the commit changes them: what it changes for them waits, and the commit gets no
        /// outcome until they are resumed. Other apps' steps ran.
        case held(apps: [String])
    }

    /// The branch tip the pass looked at.
    public var commit: String?
    /// The plan the pass ran (empty when nothing needed doing).
    public var plan: Plan
    public var result: Result

    public init(commit: String?, plan: Plan = Plan(), result: Result) {
        self.commit = commit
        self.plan = plan
        self.result = result
    }

    /// The commit's audit record when the pass ended it.
    public var audit: AuditRecord? {
        if case .ended(let record) = result { return record }
        return nil
    }

    /// The transient failure that makes the pass worth trying again.
    public var retry: ReconcileFailure? {
        if case .willRetry(let failure) = result { return failure }
        return nil
    }
}

/// What the pipeline reports as it goes, for metrics. Every method has a default that does nothing.
public protocol ReconcileMetrics: Sendable {
    func reconciled(outcome: Outcome, seconds: Double)
    func currentCommit(app: String, commit: String)
    func colorHealth(app: String, color: ColorName, healthy: Bool)
    func requests(app: String, color: ColorName, total: Int)
    func backfill(app: String, migration: String, done: Int, total: Int)
    func retried(failure: ReconcileFailure)
    /// A dead color was started again by the supervisor.
    func colorRestarted(app: String, color: ColorName)
    /// A color restarted too often in a short time (or no longer does).
    func colorCrashloop(app: String, color: ColorName, crashloop: Bool)
    /// A remote's branches were listed (`operation` "list") or its objects fetched ("fetch"), in `seconds`.
    func fetched(operation: String, seconds: Double)
    /// Listing or fetching a remote failed, for `reason` (timeout, auth, trust, network, branch_missing, other).
    func fetchFailed(reason: String)
    /// A commit status or webhook for `target` (github, gitlab, gitea, webhook) was delivered, or given up after
    /// its retries.
    func reportDelivered(target: String, delivered: Bool)
}

extension ReconcileMetrics {
    public func reconciled(outcome: Outcome, seconds: Double) {}
    public func currentCommit(app: String, commit: String) {}
    public func colorHealth(app: String, color: ColorName, healthy: Bool) {}
    public func requests(app: String, color: ColorName, total: Int) {}
    public func backfill(app: String, migration: String, done: Int, total: Int) {}
    public func retried(failure: ReconcileFailure) {}
    public func colorRestarted(app: String, color: ColorName) {}
    public func colorCrashloop(app: String, color: ColorName, crashloop: Bool) {}
    public func fetched(operation: String, seconds: Double) {}
    public func fetchFailed(reason: String) {}
    public func reportDelivered(target: String, delivered: Bool) {}
}

/// Metrics that go nowhere.
public struct NoMetrics: ReconcileMetrics {
    public init() {}
}

import Manifest
