import ArgumentParser
import Foundation

/// `teal`: the root command.
public struct TealCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "teal",
        abstract: "GitOps blue/green deploys that carry the data along.",
        discussion: "Exit status: 0 ok, 1 invalid input or refused plan, 2 usage error.",
        version: TealVersion.text,
        subcommands: [
            InitCommand.self, ValidateCommand.self, PlanCommand.self, ApplyCommand.self, WatchCommand.self, HistoryCommand.self,
            StatusCommand.self, RollbackCommand.self, SchemaCommand.self, RouterCommand.self, DownCommand.self,
            SuspendCommand.self, ResumeCommand.self, ReconcileCommand.self, RetryCommand.self, WaitCommand.self,
            LogsCommand.self, EventsCommand.self, VersionCommand.self,
        ]
    )

    public init() {}

    /// Parses the arguments and runs the command, mapping errors to teal's exit statuses.
    public static func runMain(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) async -> Int32 {
        do {
            var command = try parseAsRoot(try ConfigFile.expand(arguments))
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as CLIError {
            Console.error("error: \(error.description)")
            return 1
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                return 0
            }
            let message = fullMessage(for: error)
            if !message.isEmpty { Console.error(message) }
            // argument-parser's usage errors (64) are teal's 2.
            return code == .validationFailure ? 2 : code.rawValue
        }
    }
}
