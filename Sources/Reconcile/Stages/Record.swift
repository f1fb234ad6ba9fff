import Foundation
import Planning
import State

extension ReconcilePipeline {
    /// Stage 6: the commit's audit record goes to the state store and as a note on the commit; commits skipped
    /// since the last reconciled one get `superseded` notes.
    func record(_ audit: AuditRecord, revision: Revision, plan: Plan) async throws -> PassReport {
        var audit = audit
        audit.finishedAt = Date()
        audit.agent = configuration.agent
        if let summary = try? await drivers.source.summary(of: audit.commit) {
            audit.author = summary.author
            audit.subject = summary.subject
        }
        try store.record(audit)
        do {
            try await drivers.source.setNote(audit.note, for: audit.commit)
            if let last = revision.lastReconciled {
                for skipped in try await drivers.source.commits(after: last, before: audit.commit)
                where try await !hasOwnNote(skipped) {
                    var note = AuditRecord(commit: skipped, outcome: .superseded, host: configuration.host,
                                           startedAt: audit.startedAt, finishedAt: audit.startedAt)
                    note.agent = configuration.agent
                    note.supersededBy = audit.commit
                    try await drivers.source.setNote(note.note, for: skipped)
                    try store.record(note)
                    // A commit told `pending` (then retried, then overtaken) gets its final state too.
                    if skipped == lastPending { drivers.reporter.report(.ended(note, apps: [])) }
                }
            }
        } catch {
            logger.error("could not write the git note: \(error)")
        }
        if audit.outcome != .superseded { try store.setMeta("last_reconciled_commit", audit.commit) }
        if audit.outcome == .applied {
            try store.setMeta("last_applied_commit", audit.commit)
            try store.setMeta(Self.ranSinceApplied, "")
        }
        metrics.reconciled(outcome: audit.outcome, seconds: audit.finishedAt.timeIntervalSince(audit.startedAt))
        if audit.outcome == .applied {
            for app in lastDesired?.apps.keys.sorted() ?? [] { metrics.currentCommit(app: app, commit: audit.commit) }
        }
        var apps = Set(plan.steps.map(\.step.app)).sorted()
        if apps.isEmpty, let desired = lastDesired, desired.commit == audit.commit { apps = desired.apps.keys.sorted() }
        drivers.reporter.report(.ended(audit, apps: apps))
        lastPending = nil
        let why = audit.errors.isEmpty ? "" : ": " + audit.errors.joined(separator: "; ")
        logger.info("\(audit.commit.prefix(8)): \(audit.outcome.rawValue)\(why)")
        event(commit: audit.commit, kind: "outcome", "\(audit.commit.prefix(8)): \(audit.outcome.rawValue)\(why)")
        return PassReport(commit: audit.commit, plan: plan, result: .ended(audit))
    }

    /// Whether the commit's note already holds a record of this agent's (another agent's record does not count:
    /// each agent following the repository records its own outcome).
    func hasOwnNote(_ commit: String) async throws -> Bool {
        guard let note = try await drivers.source.note(for: commit) else { return false }
        var probe = AuditRecord(commit: commit, outcome: .superseded, host: configuration.host, startedAt: Date(), finishedAt: Date())
        probe.agent = configuration.agent
        return AuditNote.hasRecord(in: note, writtenAs: probe.note)
    }
}
