import Manifest
import State

/// Stage 1: the branch tip, and the commit the pass aims at.
struct Revision: Sendable {
    /// The branch tip now.
    var tip: String
    /// The commit whose desired state the pass reconciles; nil when there is nothing to aim at.
    var target: String?
    /// The tip has not been reconciled yet: this pass ends with its outcome.
    var isNew: Bool
    /// The last commit whose reconcile ended (not superseded).
    var lastReconciled: String?
    /// The new tip does not descend from the last applied commit (the branch was rewritten): that commit.
    var rewrittenFrom: String?
}

extension ReconcilePipeline {
    /// A drift pass on a commit that failed or was refused aims at the last commit that applied: the last good
    /// state keeps serving, and the failed commit is not tried again until a new one comes.
    func resolveRevision() async throws -> Revision {
        let tip = try await drivers.source.tip()
        let last = try store.meta("last_reconciled_commit")
        let isNew = last != tip
        var target: String? = tip
        if !isNew, let outcome = try store.outcome(commit: tip), outcome == .failed || outcome == .refused {
            target = try store.meta("last_applied_commit")
        }
        var rewrittenFrom: String?
        if isNew, let applied = try store.meta("last_applied_commit"), try await !drivers.source.isAncestor(applied, of: tip) {
            rewrittenFrom = applied
        }
        return Revision(tip: tip, target: target, isNew: isNew, lastReconciled: last, rewrittenFrom: rewrittenFrom)
    }
}
