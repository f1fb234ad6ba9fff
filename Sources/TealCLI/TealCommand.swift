import ArgumentParser

/// `teal`: the root command.
public struct TealCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "teal",
        abstract: "GitOps blue/green deploys that carry the data along.",
        subcommands: [
            InitCommand.self, ValidateCommand.self, PlanCommand.self, ApplyCommand.self, HistoryCommand.self,
            StatusCommand.self, RollbackCommand.self, SchemaCommand.self, RouterCommand.self, DownCommand.self,
        ]
    )

    public init() {}
}
