import ArgumentParser

struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rollback")
}
