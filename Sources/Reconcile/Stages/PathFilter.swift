extension ReconcilePipeline {
    /// State-store key naming the last commit that ran steps since the last applied one ("" when none did).
    static let ranSinceApplied = "ran_since_applied_commit"

    /// Stage 1c, the path filter: a new tip whose `apps/` is the last applied commit's (its commits since changed
    /// only files outside `apps/`) has nothing to reconcile: that commit, recorded as `noop`. Nil when the pass
    /// must run in full, and also when a later commit ran steps without being applied (it was superseded part-way,
    /// or failed): what runs then is not that commit's state, so a revert to it has work to do.
    func unchangedApps(_ revision: Revision) async throws -> String? {
        guard revision.target == revision.tip, let applied = try store.meta("last_applied_commit"), applied != revision.tip,
              (try store.meta(Self.ranSinceApplied) ?? "").isEmpty else { return nil }
        return try await drivers.source.changesApps(from: applied, to: revision.tip) == false ? applied : nil
    }
}
