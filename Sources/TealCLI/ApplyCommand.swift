import ArgumentParser
import Foundation
import Git
import Manifest
import Planner
import Runtime
import State

/// `teal apply`: reconcile once, then exit, leaving colors and the router running.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Reconcile once: run migrations, start and stop colors, switch traffic; then exit.",
        discussion: "Colors and the router keep running after apply exits. Exit status 1 when a step fails or a plan is refused.")

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let repository = try repo.open()
        let desired = try DesiredInput.read(repository, revision: repo.branch)
        let dataDir = data.path
        let store = try StateStore(dataDir: dataDir)
        let materializer = Materializer(repository: repository, dataDir: dataDir)
        let reconciler = Reconciler(dataDir: dataDir, store: store, router: RouterLauncher(dataDir: dataDir),
                                    materialize: { app, commit in try materializer.folder(app: app, commit: commit) })
        print("Applying \(desired.commit.prefix(8)) (\(repo.branch)):")
        let report = try await reconciler.reconcile(desired) { step in
            print("  → \(step.step.summary)")
            print("    because \(step.reason)")
        }
        if report.plan.steps.isEmpty && report.plan.refusals.isEmpty { print("  nothing to do: the observed state matches") }
        for refusal in report.plan.refusals { Console.error(refusal.description) }
        if let failure = report.failure { Console.error("failed: \(failure.step.step.summary): \(failure.error)") }
        if let id = ObjectID(hex: desired.commit) {
            do {
                try repository.setNote(report.note, for: id, signature: TealIdentity.signature())
            } catch {
                Console.error("warning: could not write the teal note on \(desired.commit.prefix(8)): \(error)")
            }
        }
        print("outcome: \(report.outcome.rawValue)")
        if report.outcome != .applied { throw ExitCode(1) }
    }
}
