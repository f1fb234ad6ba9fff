import Agent
import ArgumentParser
import Foundation
import Logging

/// `teal apply`: reconcile once, then exit, leaving colors and the router running.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Reconcile once: run migrations, start and stop colors, switch traffic; then exit.",
        discussion: """
            The outcome is written as a git note under refs/notes/teal on the reconciled commit, as the agent does. \
            Colors and the router keep running after apply exits. Exit status 1 when a step fails or a plan is refused.
            """)

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        _ = try repo.open()
        let lock: DataDirLock
        do { lock = try DataDirLock(dataDir: data.path) } catch { throw CLIError("\(error)") }
        defer { withExtendedLifetime(lock) {} }
        var logger = Logger(label: "teal.apply")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        let reconciler = Reconciler(configuration: .init(repository: repo.repo, branch: repo.branch), dataDir: data.path,
                                    store: try StateStore(dataDir: data.path), logger: logger)
        let report = try await reconciler.pass(progress: { step in
            print("  → \(step.step.summary)")
            print("    because \(step.reason)")
            fflush(nil)
        })
        guard let record = report.record else {
            print("\(report.commit?.prefix(8) ?? "?"): nothing to do: the observed state matches")
            return
        }
        for error in record.errors { Console.error(error) }
        print("\(record.commit.prefix(8)): outcome: \(record.outcome.rawValue)")
        if record.outcome != .applied { throw ExitCode(1) }
    }
}

import State
