import ArgumentParser

struct RouterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "router")
}
