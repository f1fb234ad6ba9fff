import Foundation
import Manifest
import Planning
import Reconcile
import State
import Testing

/// What the pipeline hands its `OutcomeReporter`, over in-memory seams.
@Suite struct ReportingTests {
    @Test func aDeployReportsPendingThenItsOutcome() async throws {
        let rig = try Rig(shop(commit: "c1"))
        #expect(await rig.pipeline.pass().audit?.outcome == .applied)
        #expect(rig.reporter.events("c1") == ["pending", "applied"])
        let reports = rig.reporter.reports.get()
        #expect(reports[0].event == .pending && reports[0].outcome == nil && reports[0].apps == ["shop"] && reports[0].host == "test-host")
        #expect(reports[0].message.hasPrefix("reconciling: "), "\(reports[0].message)")
        #expect(reports[1].event == .outcome && reports[1].message.hasPrefix("applied: "), "\(reports[1].message)")
        // A pass with nothing to do reports nothing.
        _ = await rig.pipeline.pass()
        #expect(rig.reporter.reports.get().count == 2)
    }

    @Test func aFailedDeployReportsPendingThenFailedWithTheError() async throws {
        let rig = try Rig(shop(commit: "c1"))
        _ = await rig.pipeline.pass()
        rig.source.commit(shop(commit: "c2", green: true))
        rig.runtime.unhealthy.update { $0 = [.green] }
        #expect(await rig.pipeline.pass().audit?.outcome == .failed)
        #expect(rig.reporter.events("c2") == ["pending", "failed"])
        let last = try #require(rig.reporter.reports.get().last)
        #expect(last.message.contains("did not become healthy") && last.errors.count == 1, "\(last.message)")
        // The failed commit is not tried again, and not reported again.
        for _ in 0..<2 { _ = await rig.pipeline.pass() }
        #expect(rig.reporter.events("c2") == ["pending", "failed"])
    }

    @Test func transientRetriesReportPendingOnce() async throws {
        let rig = try Rig(shop(commit: "c1"))
        _ = await rig.pipeline.pass()
        rig.source.commit(shop(commit: "c2", green: true))
        rig.schema.failures.update { $0 = [.transient("database is locked"), .transient("database is locked")] }
        for _ in 0..<2 { #expect(await rig.pipeline.pass().retry != nil) }
        #expect(rig.reporter.events("c2") == ["pending"], "a transient failure is never an outcome, and pending is not repeated")
        #expect(await rig.pipeline.pass().audit?.outcome == .applied)
        #expect(rig.reporter.events("c2") == ["pending", "applied"])
    }

    @Test func refusalsAndNoopsReportOnlyTheirOutcome() async throws {
        let rig = try Rig(shop(commit: "c1"), verify: .head)
        _ = await rig.pipeline.pass()
        rig.source.commit(shop(commit: "c2", green: true))
        rig.verifier.bad.update { $0["c2"] = "it is not signed" }
        #expect(await rig.pipeline.pass().audit?.outcome == .refused)
        #expect(rig.reporter.events("c2") == ["refused"], "nothing was planned, so nothing was pending")
        #expect(rig.reporter.reports.get().last?.message.contains("it is not signed") == true)

        rig.source.commit(shop(commit: "c3"))
        rig.source.outsideApps.update { $0 = ["c3"] }
        #expect(await rig.pipeline.pass().audit?.outcome == .noop)
        #expect(rig.reporter.events("c3") == ["noop"])
        #expect(rig.reporter.reports.get().last?.message == "nothing under apps/ changed since c1")
    }

    @Test func driftRepairIsNotReported() async throws {
        let rig = try Rig(shop(commit: "c1"))
        _ = await rig.pipeline.pass()
        rig.runtime.alive.update { $0 = [] }
        let report = await rig.pipeline.pass()
        guard case .repairedDrift = report.result else { Issue.record("expected a drift repair, got \(report.result)"); return }
        #expect(rig.reporter.reports.get().count == 2)
    }
}
