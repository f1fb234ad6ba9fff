import Foundation
import Manifest
import Planning
import Reconcile
import State
import Testing

/// The reconcile pipeline over in-memory seams: no git, no processes, no sockets, no files.
@Suite struct PipelineTests {
    @Test func aFirstCommitIsAppliedAndNotedOnce() async throws {
        let rig = try Rig(shop(commit: "c1"))
        let report = await rig.pipeline.pass()
        let audit = try #require(report.audit)
        #expect(audit.outcome == .applied, "\(audit.errors)")
        #expect(try rig.store.outcome(commit: "c1") == .applied)
        #expect(rig.source.notes.get()["c1"]?.hasPrefix("outcome: applied\n") == true)
        #expect(audit.author == "Ada <ada@example.com>" && audit.subject == "Commit c1")
        #expect(rig.source.notes.get()["c1"]?.contains("\nauthor: Ada <ada@example.com>\n") == true)
        #expect(rig.traffic.served.get()["shop"]?.effective == .live(.blue))
        #expect(rig.runtime.started.get().count == 1)
        // Nothing moved: the next pass does nothing and writes nothing.
        let again = await rig.pipeline.pass()
        guard case .nothingToDo = again.result else { Issue.record("expected nothing to do, got \(again.result)"); return }
        #expect(rig.source.notes.get().count == 1)
    }

    @Test func aTransientFailureIsRetriedThenAppliedWithOneNote() async throws {
        let rig = try Rig(shop(commit: "c1"))
        _ = await rig.pipeline.pass()
        rig.source.commit(shop(commit: "c2", green: true))
        rig.schema.failures.update { $0 = [.transient("database is locked"), .transient("database is locked")] }

        for attempt in 1...2 {
            let report = await rig.pipeline.pass()
            #expect(report.retry?.message == "database is locked", "attempt \(attempt): \(report.result)")
            #expect(rig.source.notes.get()["c2"] == nil, "a transient failure is never the commit's outcome")
            #expect(try rig.store.outcome(commit: "c2") == nil)
        }
        let report = await rig.pipeline.pass()
        #expect(report.audit?.outcome == .applied, "\(report.result)")
        #expect(rig.schema.starts.get() == 4, "0001 for c1, then 0002 failed twice and succeeded once")
        let note = try #require(rig.source.notes.get()["c2"])
        #expect(note.hasPrefix("outcome: applied\n"))
        #expect(!note.contains("locked"))
        #expect(rig.runtime.started.get().count == 2, "green started once, after the migration")
        #expect(try rig.store.meta("last_applied_commit") == "c2")
    }

    @Test func aPermanentFailureIsNotedOnceAndNotRetried() async throws {
        let rig = try Rig(shop(commit: "c1"))
        _ = await rig.pipeline.pass()
        rig.source.commit(shop(commit: "c2", green: true))
        rig.runtime.unhealthy.update { $0 = [.green] }

        let report = await rig.pipeline.pass()
        let audit = try #require(report.audit)
        #expect(audit.outcome == .failed)
        #expect(audit.errors.contains { $0.contains("did not become healthy") })
        let note = try #require(rig.source.notes.get()["c2"])
        #expect(note.hasPrefix("outcome: failed\n"))
        // The failed commit is not tried again; the last good state keeps serving.
        let started = rig.runtime.started.get().count
        for _ in 0..<3 { _ = await rig.pipeline.pass() }
        #expect(rig.runtime.started.get().count == started)
        #expect(rig.source.notes.get()["c2"] == note)
        #expect(try rig.store.outcome(commit: "c2") == .failed)
        #expect(rig.traffic.served.get()["shop"]?.effective == .live(.blue))
    }

    @Test func aShutdownMidPlanWritesNoOutcome() async throws {
        let rig = try Rig(shop(commit: "c1"))
        // The agent is told to stop while the first color starts: that step finishes, the rest is left.
        rig.runtime.onStart.update { $0 = { withUnsafeCurrentTask { $0?.cancel() } } }
        let pipeline = rig.pipeline
        let report = await Task { await pipeline.pass() }.value
        guard case .stopped = report.result else { Issue.record("expected a stop, got \(report.result)"); return }
        #expect(rig.source.notes.get().isEmpty)
        #expect(try rig.store.outcome(commit: "c1") == nil)
        #expect(try rig.store.meta("last_reconciled_commit") == nil)
        // Journal: the steps up to blue's start ran; the route was left for the next agent.
        let journal = try rig.store.journalEntries(commit: "c1")
        let ran = journal.prefix { $0.status == .done }
        #expect(ran.last.map { if case .startColor = $0.step.step { true } else { false } } == true, "\(journal.map(\.status))")
        #expect(!journal.dropFirst(ran.count).isEmpty && journal.dropFirst(ran.count).allSatisfy { $0.status == .superseded })

        // The next agent re-plans from what runs and finishes without starting blue again.
        rig.runtime.onStart.update { $0 = nil }
        let next = await rig.pipeline.pass()
        #expect(next.audit?.outcome == .applied, "\(next.result)")
        #expect(rig.runtime.started.get().count == 1)
        #expect(rig.source.notes.get().count == 1)
    }

    @Test func aNewerCommitSupersedesTheRestOfThePlan() async throws {
        let rig = try Rig(shop(commit: "c1"))
        _ = await rig.pipeline.pass()
        rig.source.commit(shop(commit: "c2", green: true))
        // While green starts, a commit that switches traffic arrives.
        rig.runtime.onStart.update { $0 = { rig.source.commit(shop(commit: "c3", green: true, live: .green)) } }
        let report = await rig.pipeline.pass()
        #expect(report.audit?.outcome == .superseded || report.audit?.outcome == .applied, "\(report.result)")
        rig.runtime.onStart.update { $0 = nil }
        let next = await rig.pipeline.pass()
        #expect(next.audit?.commit == "c3" && next.audit?.outcome == .applied, "\(next.result)")
        #expect(rig.traffic.served.get()["shop"]?.effective == .live(.green))
        #expect(rig.source.notes.get()["c3"]?.hasPrefix("outcome: applied") == true)
    }

    @Test func anInvalidCommitFailsWithItsDiagnostics() async throws {
        let rig = try Rig(shop(commit: "c1"))
        _ = await rig.pipeline.pass()
        let source = rig.source
        source.commit(shop(commit: "c2"))
        source.states.update { $0["c2"] = nil }
        // The fake throws a permanent failure for an unknown commit, which is not a manifest error: no outcome.
        let report = await rig.pipeline.pass()
        guard case .notReconciled = report.result else { Issue.record("\(report.result)"); return }
        #expect(source.notes.get()["c2"] == nil)
    }

    @Test func aMigrationItsBackendCannotRunFailsTheCommitWithFileAndLine() async throws {
        let rig = try Rig(shop(commit: "c1"))
        _ = await rig.pipeline.pass()
        var next = shop(commit: "c2", green: true)
        next.apps["shop"]!.migrations[1].name = "0002_invalid"
        next.apps["shop"]!.environment.colors[.green]!.schema = "0002_invalid"
        rig.source.commit(next)
        let report = await rig.pipeline.pass()
        let audit = try #require(report.audit)
        #expect(audit.outcome == .failed)
        #expect(audit.errors == ["apps/shop/schema/0002_invalid.yaml:3:7: cannot run here"], "\(audit.errors)")
        #expect(rig.schema.starts.get() == 1, "nothing of the refused migration ran")
        #expect(rig.runtime.started.get().count == 1)
    }

    @Test func failuresAreClassified() {
        #expect(ReconcileFailure.classify(CancellationError()).isTransient)
        #expect(ReconcileFailure.classify(ReconcileFailure.transient("x")).isTransient)
        #expect(!ReconcileFailure.classify(ReconcileFailure.permanent("x")).isTransient)
        struct Other: Error {}
        #expect(!ReconcileFailure.classify(Other()).isTransient)
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1))
        let waits = (0..<8).map { _ in backoff.next() }
        #expect(waits[0] <= .milliseconds(100) && waits[0] >= .milliseconds(80))
        #expect(waits[2] >= .milliseconds(320) && waits[2] <= .milliseconds(400))
        #expect(waits.last! <= .seconds(1) && waits.last! >= .milliseconds(800))
    }
}
