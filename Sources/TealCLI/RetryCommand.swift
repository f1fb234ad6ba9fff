import Agent
import ArgumentParser
import Foundation
import Git
import State

/// `teal retry [COMMIT]`: reconcile a failed commit again.
struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Reconcile a commit that failed or was refused again (for example after fixing its database).",
        discussion: """
            Forgets the commit's outcome in the state store, so the next pass reconciles it as a new commit and \
            writes its note again. Only the branch tip can be retried: teal reconciles the tip. When an agent runs, \
            it is asked for a pass at once; otherwise retry runs the pass itself, as teal apply would. Exit status 1 \
            when the commit did not fail, is not the tip, or fails again.
            """)

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption

    @Argument(help: "The commit to retry (default: the branch tip).")
    var commit: String?

    @Option(help: "HOST:PORT of the agent's admin endpoint (default: the address the agent wrote in the data dir).")
    var admin: String?

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let repository = try repo.open()
        let tip: ObjectID, target: ObjectID
        do {
            guard let branchTip = try repository.branchTip(repo.branch) else {
                throw CLIError("branch '\(repo.branch)' does not exist in \(repo.path)")
            }
            tip = branchTip
            target = try commit.map { try repository.resolve($0) } ?? branchTip
        } catch let error as GitError {
            throw CLIError(error.description)
        }
        guard target == tip else {
            throw CLIError("\(target.short) is not the tip of \(repo.branch) (\(tip.short)); teal reconciles only the tip: "
                + "commit a fix, or teal rollback \(tip.short)")
        }
        let store = try data.storeOfExistingDataDir()
        do { try store.forgetOutcome(commit: tip.hex, by: operatorName()) } catch let error as StateStoreError { throw CLIError(error.description) }

        guard let lock = try? DataDirLock(dataDir: data.path) else {
            let client = AdminClient.locate(admin: admin, dataDir: data.path)
            if let client, (try? client.request("POST", "/reconcile", timeout: 5))?.status == 202 {
                print("\(tip.short): the agent at \(client.address) reconciles it again now")
            } else {
                print("\(tip.short): the running agent reconciles it again at its next pass")
            }
            return
        }
        let agent = try TealAgent(configuration: AgentConfiguration(repository: repo.path, branch: repo.branch, dataDir: data.path, admin: nil),
                                  lock: lock, logger: logger("teal.retry", level: .warning))
        let report = await agent.reconcileOnce(progress: { step in
            print("  → \(step.step.summary)")
            fflush(nil)
        })
        guard let record = report.audit else { throw CLIError("\(tip.short): the pass ended without an outcome (\(report.result))") }
        for error in record.errors { Console.error(error) }
        print("\(record.commit.prefix(8)): outcome: \(record.outcome.rawValue)")
        if record.outcome != .applied && record.outcome != .noop { throw ExitCode(1) }
    }
}
