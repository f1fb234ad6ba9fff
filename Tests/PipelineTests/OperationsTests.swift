import Foundation
import Manifest
import Planning
import Reconcile
import State
import Testing

/// Suspensions gate the pipeline; a retried commit is reconciled again as a new one; steps and outcomes go to the
/// event log.
@Suite struct OperationsTests {
    @Test func aSuspendedAppHoldsANewCommitWithoutAnOutcomeUntilResumed() async throws {
        let rig = try Rig(shop(commit: "c1"))
        _ = await rig.pipeline.pass()
        try rig.store.suspend(Suspension(app: "shop", repairDrift: false, by: "test"))
        rig.source.commit(shop(commit: "c2", green: true))

        for _ in 1...2 {
            let report = await rig.pipeline.pass()
            guard case .held(let apps) = report.result else { Issue.record("expected held, got \(report.result)"); return }
            #expect(apps == ["shop"])
        }
        #expect(rig.runtime.started.get().count == 1, "green must not start while shop is suspended")
        #expect(rig.source.notes.get()["c2"] == nil)
        #expect(try rig.store.outcome(commit: "c2") == nil)
        #expect(try rig.store.events(app: "shop").filter { $0.kind == "held" }.count == 1, "a held commit is reported once")

        #expect(try rig.store.resume(app: "shop", by: "test"))
        let report = await rig.pipeline.pass()
        #expect(report.audit?.outcome == .applied, "\(report.result)")
        #expect(rig.runtime.started.get().count == 2)
        let kinds = try rig.store.events().map(\.kind)
        #expect(kinds.contains("suspend") && kinds.contains("resume") && kinds.contains("outcome") && kinds.contains("step"))
    }

    @Test func everyPassDoesEachDatabasesHousekeepingButASuspendedAppsOnes() async throws {
        var desired = shop(commit: "c1")
        desired.apps["shop"]?.environment.databaseOptions.retention = .seconds(36 * 3600)
        desired.apps["shop"]?.environment.databaseOptions.lockTimeout = .milliseconds(200)
        let rig = try Rig(desired)
        _ = await rig.pipeline.pass()
        #expect(rig.schema.maintained.get() == 1)
        #expect(rig.schemas.options.get()?.retention == .seconds(36 * 3600), "environment.yaml's settings reach the backend")
        #expect(rig.schemas.options.get()?.lockTimeout == .milliseconds(200))
        #expect(rig.schemas.withoutOptions.get() == 0, "observing the database too gets environment.yaml's settings")
        _ = await rig.pipeline.pass()
        #expect(rig.schema.maintained.get() == 2, "an idle pass too")
        try rig.store.suspend(Suspension(app: "shop", repairDrift: false, by: "test"))
        _ = await rig.pipeline.pass()
        #expect(rig.schema.maintained.get() == 2, "not while the app is suspended")
    }

    @Test func driftOfASuspendedAppIsRepairedOnlyWhenAsked() async throws {
        let rig = try Rig(shop(commit: "c1"))
        _ = await rig.pipeline.pass()
        try rig.store.suspend(Suspension(app: nil, repairDrift: false, by: "test"))
        rig.runtime.alive.update { $0.removeAll() }
        let report = await rig.pipeline.pass()
        guard case .nothingToDo = report.result else { Issue.record("expected nothing to do, got \(report.result)"); return }
        #expect(rig.runtime.started.get().count == 1)

        try rig.store.suspend(Suspension(app: nil, repairDrift: true, by: "test"))
        let repaired = await rig.pipeline.pass()
        guard case .repairedDrift = repaired.result else { Issue.record("expected a drift repair, got \(repaired.result)"); return }
        #expect(rig.runtime.started.get().count == 2)
        #expect(try rig.store.events().contains { $0.kind == "drift-repair" })
    }

    @Test func aRetriedCommitIsReconciledAgainAndNotedAgain() async throws {
        let rig = try Rig(shop(commit: "c1"))
        _ = await rig.pipeline.pass()
        rig.source.commit(shop(commit: "c2", green: true))
        rig.runtime.unhealthy.update { $0 = [.green] }
        #expect(await rig.pipeline.pass().audit?.outcome == .failed)
        #expect(throws: StateStoreError.self) { try rig.store.forgetOutcome(commit: "c1", by: "test") }

        // The cause is fixed outside git (say the database); the same commit is retried.
        rig.runtime.unhealthy.update { $0 = [] }
        try rig.store.forgetOutcome(commit: "c2", by: "test")
        let report = await rig.pipeline.pass()
        #expect(report.audit?.outcome == .applied, "\(report.result)")
        #expect(rig.source.notes.get()["c2"]?.hasPrefix("outcome: applied") == true)
        #expect(try rig.store.meta("last_applied_commit") == "c2")
        #expect(try rig.store.events().contains { $0.kind == "retry" && $0.commit == "c2" })
    }
}

@Suite struct ListenConflictTests {
    /// A listen address another process holds is found when planning: the app is refused before its migration or
    /// any color starts, and the refusal names the address and the holder.
    @Test func aListenAddressInUseIsRefusedBeforeAnythingStarts() async throws {
        let rig = try Rig(shop(commit: "c1"))
        rig.traffic.held.update { $0[ListenAddress(host: "127.0.0.1", port: 8080)] = "pid 4242 (nginx)" }
        let report = await rig.pipeline.pass()
        let audit = try #require(report.audit)
        #expect(audit.outcome == .refused)
        #expect(audit.errors.contains { $0.contains("listen 127.0.0.1:8080 is in use by pid 4242 (nginx)") && $0.contains("traffic.yaml") }, "\(audit.errors)")
        #expect(rig.schema.starts.get() == 0 && rig.runtime.started.get().isEmpty)
    }
}
