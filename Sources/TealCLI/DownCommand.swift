import ArgumentParser

struct DownCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "down")
}
