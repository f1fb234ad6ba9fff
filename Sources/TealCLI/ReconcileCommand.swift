import Agent
import ArgumentParser
import Foundation

/// `teal reconcile`: ask the running agent for a pass now.
struct ReconcileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Ask the running agent (teal watch) for a reconcile pass now, without waiting for its next poll.",
        discussion: "Sends POST /reconcile to the agent's admin endpoint. Exit status 1 when no agent answers.")

    @OptionGroup var data: DataDirOption

    @Option(help: "HOST:PORT of the agent's admin endpoint (default: the address the agent wrote in the data dir, else 127.0.0.1:9400).")
    var admin: String?

    func run() throws {
        guard let client = AdminClient.locate(admin: admin, dataDir: data.path) else {
            throw ValidationError("--admin must be HOST:PORT")
        }
        do {
            let reply = try client.request("POST", "/reconcile")
            guard reply.status == 202 else { throw CLIError("the agent at \(client.address) answered \(reply.status): \(reply.body)") }
            print("asked the agent at \(client.address) for a pass")
        } catch let failure as AdminClient.Failure {
            throw CLIError("\(failure.description); start one with teal watch, or run a pass with teal apply")
        }
    }
}
