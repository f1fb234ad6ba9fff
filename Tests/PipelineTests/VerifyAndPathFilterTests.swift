import Foundation
import Manifest
import Planning
import Reconcile
import State
import Testing

/// `--verify` and the path filter in the pipeline, over in-memory seams.
@Suite struct VerifyAndPathFilterTests {
    @Test func aTipThatDoesNotVerifyIsRefusedAndTheLastGoodCommitKeepsServing() async throws {
        let rig = try Rig(shop(commit: "c1"), verify: .head)
        #expect(await rig.pipeline.pass().audit?.outcome == .applied)
        rig.source.commit(shop(commit: "c2", green: true))
        rig.verifier.bad.update { $0["c2"] = "it is not signed" }

        let report = await rig.pipeline.pass()
        let audit = try #require(report.audit)
        #expect(audit.outcome == .refused)
        #expect(audit.errors == ["signature check (--verify head) failed for the tip: commit c2: it is not signed; it is not applied and c1 keeps serving"])
        #expect(rig.source.notes.get()["c2"]?.hasPrefix("outcome: refused\n") == true)
        #expect(rig.runtime.started.get().count == 1, "green never started")
        #expect(try rig.store.meta("last_applied_commit") == "c1")
        // Not tried again; drift passes aim at c1.
        guard case .nothingToDo = await rig.pipeline.pass().result else { Issue.record("a refused commit is not tried again"); return }
        #expect(rig.verifier.checked.get() == ["c1", "c2"])

        // A commit that verifies on top (head checks the tip only) is applied.
        rig.source.commit(shop(commit: "c3", green: true))
        #expect(await rig.pipeline.pass().audit?.outcome == .applied)
        #expect(rig.runtime.started.get().count == 2)
    }

    @Test func verifyAllChecksEveryCommitSinceTheLastApplied() async throws {
        let rig = try Rig(shop(commit: "c1"), verify: .all)
        #expect(await rig.pipeline.pass().audit?.outcome == .applied)
        rig.source.commit(shop(commit: "c2"))
        rig.source.commit(shop(commit: "c3", green: true))
        rig.verifier.bad.update { $0["c2"] = "it is not signed" }
        let audit = try #require(await rig.pipeline.pass().audit)
        #expect(audit.commit == "c3" && audit.outcome == .refused)
        #expect(audit.errors.first?.contains("failed for c2, a commit between c1 and the tip: commit c2: it is not signed") == true, "\(audit.errors)")
        #expect(rig.runtime.started.get().count == 1)
    }

    @Test func withoutVerifyNothingIsChecked() async throws {
        let rig = try Rig(shop(commit: "c1"))
        rig.verifier.bad.update { $0["c1"] = "it is not signed" }
        #expect(await rig.pipeline.pass().audit?.outcome == .applied)
        #expect(rig.verifier.checked.get().isEmpty)
    }

    @Test func aCommitOutsideAppsIsANoopAndRunsNoStep() async throws {
        let rig = try Rig(shop(commit: "c1"))
        #expect(await rig.pipeline.pass().audit?.outcome == .applied)
        // Stop blue behind the pipeline's back: a full pass would start it again; a noop does not look.
        rig.runtime.alive.update { $0 = [] }
        rig.source.commit(shop(commit: "c2"))
        rig.source.outsideApps.update { $0 = ["c2"] }
        let report = await rig.pipeline.pass()
        let audit = try #require(report.audit)
        #expect(audit.outcome == .noop && audit.steps.isEmpty && report.plan.steps.isEmpty)
        #expect(rig.source.notes.get()["c2"]?.contains("outcome: noop\n") == true)
        #expect(rig.source.notes.get()["c2"]?.contains("nothing under apps/ changed since: c1\n") == true)
        #expect(rig.runtime.started.get().count == 1)
        #expect(try rig.store.outcome(commit: "c2") == .noop && rig.store.meta("last_applied_commit") == "c1")
        // The drift pass that follows repairs toward the tip, whose apps/ is c1's.
        _ = await rig.pipeline.pass()
        #expect(rig.runtime.started.get().count == 2)
    }
}

/// A newer commit while a backfill runs: the running start is asked to stop, the commit it served is superseded
/// (not failed), and the newer commit — a revert to the last applied state — is reconciled in full, not taken for
/// a noop, since the superseded commit left a migration in flight.
@Suite struct InterruptedBackfillTests {
    @Test(.timeLimit(.minutes(1)))
    func aNewerCommitStopsTheBackfillAndTheRevertUndoesIt() async throws {
        let rig = try Rig(shop(commit: "c1"))
        #expect(await rig.pipeline.pass().audit?.outcome == .applied)
        rig.schema.backfillsUntilStopped.update { $0 = true }
        rig.source.commit(shop(commit: "c2", green: true))
        let startsBefore = rig.schema.starts.get()
        let running = Task { await rig.pipeline.pass() }
        while rig.schema.starts.get() == startsBefore { try await Task.sleep(for: .milliseconds(5)) }
        rig.source.commit(shop(commit: "c3"))
        rig.source.outsideApps.update { $0 = ["c3"] }

        let report = await running.value
        let audit = try #require(report.audit)
        #expect(audit.commit == "c2" && audit.outcome == .superseded, "\(report)")
        #expect(audit.steps.first?.superseded == true && audit.steps.first?.summary == "shop: start migration 0002_more")
        #expect(audit.errors.isEmpty)
        #expect(rig.runtime.started.get().count == 1, "green never started")
        #expect(rig.schema.history.get().inFlight?.name == "0002_more", "\(audit.steps) \(rig.schema.history.get())")

        let next = try #require(await rig.pipeline.pass().audit)
        #expect(next.commit == "c3" && next.outcome == .applied, "\(next)")
        #expect(next.steps.map(\.summary) == ["shop: roll back migration 0002_more"])
        #expect(rig.schema.history.get().inFlight == nil)
    }

    /// The revert of a finish is itself reverted while its reopen fills the old shape: the reopen stops, and the
    /// next pass completes the migration again instead of leaving it half reopened.
    @Test(.timeLimit(.minutes(1)))
    func aNewerCommitStopsTheReopenAndTheNextPassCompletesAgain() async throws {
        var finished = shop(commit: "c1", green: true, live: .green)
        finished.apps["shop"]?.environment.colors[.blue] = nil
        let rig = try Rig(finished)
        #expect(await rig.pipeline.pass().audit?.outcome == .applied)
        rig.schema.history.update { h in
            h.completed = [AppliedMigration(name: "0001_init", checksum: "a"), AppliedMigration(name: "0002_more", checksum: "b")]
            h.inFlight = nil
            h.lastCompletedReopenable = true
        }
        rig.source.commit(shop(commit: "c2", green: true, live: .green))  // blue on 0001_init again: the finish reverted
        let running = Task { await rig.pipeline.pass() }
        while rig.schema.reopens.get() == 0 { try await Task.sleep(for: .milliseconds(5)) }
        var again = finished
        again.commit = "c3"
        rig.source.commit(again)

        let audit = try #require(await running.value.audit)
        #expect(audit.commit == "c2" && audit.outcome == .superseded, "\(audit)")
        #expect(audit.steps.first?.summary == "shop: reopen migration 0002_more (undo its complete)", "\(audit.steps)")
        #expect(rig.schema.history.get().lastCompletedReopening)

        let next = try #require(await rig.pipeline.pass().audit)
        #expect(next.commit == "c3" && next.outcome == .applied, "\(next)")
        #expect(next.steps.map(\.summary) == ["shop: complete migration 0002_more"])
        #expect(!rig.schema.history.get().lastCompletedReopening)
    }

    /// A start that fails for real just as a newer commit arrives is a failure of its commit, with the error.
    @Test(.timeLimit(.minutes(1)))
    func aRealFailureAsTheStopComesIsStillAFailure() async throws {
        let rig = try Rig(shop(commit: "c1"))
        #expect(await rig.pipeline.pass().audit?.outcome == .applied)
        rig.schema.backfillsUntilStopped.update { $0 = true }
        rig.schema.failureWhenStopped.update { $0 = .permanent("disk I/O error") }
        rig.source.commit(shop(commit: "c2", green: true))
        let startsBefore = rig.schema.starts.get()
        let running = Task { await rig.pipeline.pass() }
        while rig.schema.starts.get() == startsBefore { try await Task.sleep(for: .milliseconds(5)) }
        rig.source.commit(shop(commit: "c3"))
        let audit = try #require(await running.value.audit)
        #expect(audit.commit == "c2" && audit.outcome == .failed, "\(audit)")
        #expect(audit.errors.contains { $0.contains("disk I/O error") }, "\(audit.errors)")
    }
}
