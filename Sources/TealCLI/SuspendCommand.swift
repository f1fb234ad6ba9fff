import Agent
import ArgumentParser
import Foundation
import Manifest
import State

/// Who is doing something, for the record: `user@host`.
func operatorName() -> String {
    let env = ProcessInfo.processInfo.environment
    let user = env["USER"] ?? env["LOGNAME"] ?? "unknown"
    return "\(user)@\(ProcessInfo.processInfo.hostName)"
}

/// Checks an APP argument.
func validateApp(_ app: String?) throws {
    if let app, !Identifiers.isValidAppName(app) {
        throw ValidationError("'\(app)' is not an app name ([a-z][a-z0-9-]*)")
    }
}

extension DataDirOption {
    /// The state store of a data dir that must exist (commands that record something for the agent).
    func storeOfExistingDataDir() throws -> StateStore {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError("no teal data dir at \(path) (pass --data-dir or set TEAL_DATA_DIR)")
        }
        do { return try StateStore(dataDir: path) } catch { throw CLIError("cannot open the state store in \(path): \(error)") }
    }
}

/// `teal suspend [APP]`: hold back new commits.
struct SuspendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suspend",
        abstract: "Stop reconciling new commits for APP (default: every app) until teal resume.",
        discussion: """
            Recorded in the state store, so it holds across agent restarts; shown by teal status and the status page. \
            A commit that changes a suspended app gets no outcome while it is held; other apps' changes still run. \
            What runs is left alone: a dead color is not restarted and drift is not repaired, unless --repair-drift.
            """)

    @OptionGroup var data: DataDirOption

    @Argument(help: "The app to suspend (default: every app).")
    var app: String?

    @Flag(help: "Keep repairing drift of what already runs (restart dead colors, put routes back).")
    var repairDrift = false

    func validate() throws { try validateApp(app) }

    func run() throws {
        let store = try data.storeOfExistingDataDir()
        try store.suspend(Suspension(app: app, repairDrift: repairDrift, by: operatorName()))
        print("suspended \(app ?? "every app"): new commits are held until teal resume \(app ?? "")"
            .trimmingCharacters(in: .whitespaces) + (repairDrift ? "; drift is still repaired" : "; drift is not repaired"))
    }
}

/// `teal resume [APP]`: reconcile again.
struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Reconcile APP (default: every app, and every app's own suspension) again; held commits run at once.")

    @OptionGroup var data: DataDirOption

    @Argument(help: "The app to resume (default: every app).")
    var app: String?

    @Option(help: "HOST:PORT of the agent's admin endpoint (default: the address the agent wrote in the data dir).")
    var admin: String?

    func validate() throws { try validateApp(app) }

    func run() throws {
        let store = try data.storeOfExistingDataDir()
        guard try store.resume(app: app, by: operatorName()) else {
            print(app.map { "\($0) is not suspended" } ?? "nothing is suspended")
            return
        }
        print("resumed \(app ?? "every app")")
        // The agent reads suspensions every pass; asking for one now runs held commits without waiting for the poll.
        if let client = AdminClient.locate(admin: admin, dataDir: data.path) { _ = try? client.request("POST", "/reconcile", timeout: 2) }
    }
}
