import Manifest
import State

extension ReconcilePipeline {
    /// With stage 4, on every pass (an idle agent's too): each app database's housekeeping — on PostgreSQL, what
    /// completed migrations put aside longer ago than `database.retention` is purged and the version schemas in
    /// use get the privileges granted on the base tables since. Suspended apps are left alone. The backends keep
    /// this cheap and never fail the pass for it.
    func maintainDatabases(_ desired: DesiredState) async {
        let suspensions = try? store.suspensions()
        for name in desired.apps.keys.sorted() {
            guard let app = desired.apps[name], suspensions?.holding(name) == nil,
                  let backend = try? drivers.schemas.backend(for: app.environment.database, options: app.environment.databaseOptions)
            else { continue }
            await backend.maintain()
        }
    }
}
