import Agent
import ArgumentParser
import Foundation

/// `teal apply`: reconcile once, then exit, leaving colors and the router running.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Reconcile once: run migrations, start and stop colors, switch traffic; then exit.",
        discussion: """
            The outcome is written as a git note under refs/notes/teal on the reconciled commit, as the agent does. \
            Colors and the router keep running after apply exits. A transient failure (a locked database, a router \
            not answering) is retried with backoff and is never written as the commit's outcome. Exit status 1 when \
            a step fails, a plan is refused, or transient failures outlast the retries.
            """)

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption
    @OptionGroup var signatures: VerifyOptions
    @OptionGroup var reports: ReportOptions

    @Flag(help: "Accept a branch tip that does not descend from the last applied commit (a force push).")
    var allowRewrites = false

    @Option(help: "Passes tried, with backoff, while failures are transient (a locked database, an unreachable remote).")
    var attempts = 8

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        try repo.checkLocal()
        let lock: DataDirLock
        do { lock = try DataDirLock(dataDir: data.path) } catch { throw CLIError("\(error)") }
        var configuration = AgentConfiguration(repository: repo.path, branch: repo.branch, dataDir: data.path, admin: nil,
                                               remote: repo.remote, allowRewrites: allowRewrites,
                                               verify: signatures.verify, signatures: signatures.policy,
                                               reports: try reports.settings(repository: repo.path))
        configuration.applyAttempts = max(1, attempts)
        let agent = try TealAgent(configuration: configuration,
                              lock: lock, logger: logger("teal.apply", level: .warning))
        let report = await agent.reconcileOnce(progress: { step in
            print("  → \(step.step.summary)")
            print("    because \(step.reason)")
            fflush(nil)
        })
        switch report.result {
        case .nothingToDo, .repairedDrift:
            print("\(report.commit?.prefix(8) ?? "?"): nothing to do: the observed state matches")
        case .ended(let record):
            for error in record.errors { Console.error(error) }
            print("\(record.commit.prefix(8)): outcome: \(record.outcome.rawValue)")
            if record.outcome != .applied && record.outcome != .noop { throw ExitCode(1) }
        case .willRetry(let failure):
            throw CLIError("\(failure) (a transient failure; no outcome was recorded, run apply again)")
        case .stopped:
            throw CLIError("stopped before the plan finished; no outcome was recorded")
        case .notReconciled(let failure):
            throw CLIError("\(failure)")
        case .held(let apps):
            throw CLIError("\(report.commit?.prefix(8) ?? "?") is held: it changes \(apps.joined(separator: ", ")), suspended "
                + "(teal resume to reconcile it); no outcome was recorded")
        }
    }
}
