import Agent
import ArgumentParser
import Foundation
import Manifest
import Reconcile
import State

/// `teal plan`: what reconcile would do now, and why.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the steps reconcile would run now, with the reason for each.",
        discussion: "Observes what runs (processes, health, router, databases) exactly as apply does, and changes nothing; "
            + "a data dir that does not exist yet is planned from nothing running. Exit status 1 when the plan is refused.")

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption

    @Flag(help: "Print the plan as JSON.")
    var json = false

    func run() async throws {
        try repo.checkLocal()
        let drivers = ReconcileDrivers.standard(repository: repo.path, branch: repo.branch, dataDir: data.path, remote: repo.remote)
        let store = try data.existingStore() ?? StateStore.inMemory()
        let pipeline = ReconcilePipeline(drivers: drivers, store: store)
        let commit: String, plan: Planning.Plan
        do {
            (commit, plan) = try await pipeline.plan()
        } catch let errors as ManifestErrors {
            DesiredInput.report(errors, revision: repo.branch)
            throw ExitCode(1)
        } catch let failure as ReconcileFailure {
            throw CLIError(failure.description)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(plan), as: UTF8.self))
        } else {
            print("Plan for \(commit.prefix(8)) (\(repo.branch)):")
            if plan.steps.isEmpty && plan.refusals.isEmpty { print("  nothing to do: the observed state matches") }
            for (i, step) in plan.steps.enumerated() {
                print("  \(i + 1). \(step.step.summary)")
                print("     because \(step.reason)")
            }
            for refusal in plan.refusals { Console.error(refusal.description) }
        }
        if !plan.refusals.isEmpty { throw ExitCode(1) }
    }
}

import Planning
