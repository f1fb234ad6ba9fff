extension ReconcilePipeline {
    /// Stage 1c, the path filter: a new tip whose `apps/` is the last applied commit's (its commits since changed
    /// only files outside `apps/`) has nothing to reconcile: that commit, recorded as `noop`. Nil when the pass
    /// must run in full.
    func unchangedApps(_ revision: Revision) async throws -> String? {
        guard revision.target == revision.tip, let applied = try store.meta("last_applied_commit"), applied != revision.tip else { return nil }
        return try await drivers.source.changesApps(from: applied, to: revision.tip) == false ? applied : nil
    }
}
