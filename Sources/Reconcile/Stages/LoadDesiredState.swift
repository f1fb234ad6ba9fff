import Manifest

/// Stage 2's answer: the desired state, or why the commit's manifests do not load.
enum LoadedDesiredState: Sendable {
    case loaded(DesiredState)
    case invalid(ManifestErrors)
}

extension ReconcilePipeline {
    /// Reads and validates the desired state of `commit`, its migrations checked by each app's schema backend;
    /// a commit's desired state never changes, so the last one is kept.
    func loadDesiredState(commit: String) async throws -> LoadedDesiredState {
        if let cached = lastDesired, cached.commit == commit { return .loaded(cached) }
        do {
            let desired = try await drivers.source.desiredState(at: commit)
            let problems = desired.apps.keys.sorted().flatMap { name -> [Diagnostic] in
                let app = desired.apps[name]!
                return drivers.schemas.validate(app.migrations, for: app.environment.database)
            }
            if !problems.isEmpty { return .invalid(ManifestErrors(problems)) }
            lastDesired = desired
            return .loaded(desired)
        } catch let errors as ManifestErrors {
            return .invalid(errors)
        }
    }
}
