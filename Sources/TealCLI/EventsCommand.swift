import ArgumentParser
import Foundation
import Manifest
import State

/// `teal events [APP]`: what the agent did and saw.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "What the agent did and saw, with times: steps, outcomes, restarts, crash loops, drift repairs, suspensions.",
        discussion: """
            Read from the state store. The agent serves the same as JSON lines at GET /events on its admin endpoint \
            (?app=APP, ?after=ID, ?follow=1).
            """)

    @OptionGroup var data: DataDirOption

    @Argument(help: "Only this app's events (and the agent's own).")
    var app: String?

    @Flag(help: "One JSON object per line.")
    var json = false

    @Flag(name: [.customShort("f"), .long], help: "Keep printing events as they happen.")
    var follow = false

    @Option(help: "Only events within this long (10m, 1h).")
    var since: String?

    @Option(help: "Only the last N events.")
    var tail = 100

    func validate() throws {
        try validateApp(app)
        if let since, DurationParser.parse(since) == nil { throw ValidationError("--since is a duration such as 10m") }
    }

    func run() async throws {
        guard FileManager.default.fileExists(atPath: data.path) else {
            throw CLIError("no teal data dir at \(data.path) (pass --data-dir or set TEAL_DATA_DIR)")
        }
        guard let store = try data.existingStore() else { throw CLIError("no state store in \(data.path) yet") }
        let cutoff = since.flatMap(DurationParser.parse).map { Date().addingTimeInterval(-Double($0.components.seconds)) }
        var cursor: Int64 = 0
        for event in try store.events(app: app, since: cutoff, last: tail) {
            show(event)
            cursor = event.id
        }
        guard follow else { return }
        fflush(nil)
        while !Task.isCancelled {
            try await Task.sleep(for: .milliseconds(250))
            for event in try store.events(app: app, after: cursor) {
                show(event)
                cursor = event.id
            }
            fflush(nil)
        }
    }

    func show(_ event: AgentEvent) {
        if json { print(event.jsonLine()); return }
        let subject = [event.app, event.color].compactMap { $0 }.joined(separator: " ")
        print("\(event.at.formatted(.iso8601))  \(event.kind.padding(toLength: 12, withPad: " ", startingAt: 0))  "
            + "\(subject.isEmpty ? "" : subject + ": ")\(event.message)")
    }
}
