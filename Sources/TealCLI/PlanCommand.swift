import ArgumentParser
import Foundation
import Manifest
import Planner
import State

/// `teal plan`: what reconcile would do now, and why.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the steps reconcile would run now, with the reason for each.",
        discussion: "Compares the branch tip with the state recorded in --data-dir (empty on a fresh dir). Exit status 1 when the plan is refused.")

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption

    @Flag(help: "Print the plan as JSON.")
    var json = false

    func run() throws {
        let repository = try repo.open()
        let desired = try DesiredInput.read(repository, revision: repo.branch)
        let observed = try StateStore(dataDir: data.path).recordedState()
        let plan = Planner.plan(desired: desired, observed: observed)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(plan), as: UTF8.self))
        } else {
            print("Plan for \(desired.commit.prefix(8)) (\(repo.branch)):")
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
