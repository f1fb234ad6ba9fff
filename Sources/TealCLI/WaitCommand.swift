import Agent
import ArgumentParser
import Foundation
import Manifest
import State

/// `teal wait`: block until the branch tip is applied (and healthy).
struct WaitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait",
        abstract: "Wait until the branch tip is applied, and with --for healthy until every color runs healthy.",
        discussion: """
            Follows the branch: a commit that arrives while waiting is waited for in turn. Exit status: 0 reached; \
            1 the tip failed or was refused (its errors are printed); 3 the timeout passed first (what was missing \
            is printed); 2 usage error.
            """)

    enum Goal: String, ExpressibleByArgument, CaseIterable { case applied, healthy }

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption

    @Option(name: .customLong("for"), help: "applied: the tip's outcome is applied; healthy: also every color healthy.")
    var goal: Goal = .healthy

    @Option(help: "Give up after this long (ms, s, m, h).")
    var timeout = "2m"

    @Option(help: "How often to look.")
    var every = "200ms"

    func run() async throws {
        guard let limit = DurationParser.parse(timeout), let interval = DurationParser.parse(every), interval > .zero else {
            throw ValidationError("--timeout and --every are durations such as 90s or 2m")
        }
        let repository = try repo.open()
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var missing = "no state store in \(data.path) yet"
        while true {
            guard let tip = try repository.branchTip(repo.branch)?.hex else { throw CLIError("branch '\(repo.branch)' does not exist") }
            if let store = try? data.existingStore() {
                switch try store.outcome(commit: tip) {
                case let outcome? where outcome == .applied || outcome == .noop:
                    if goal == .applied {
                        print("\(tip.prefix(8)): \(outcome.rawValue)")
                        return
                    }
                    let report = try await StatusReport.gather(store: store, drivers: .standard(repository: "", branch: repo.branch, dataDir: data.path))
                    let sick = report.apps.flatMap { app in app.colors.filter { $0.state != "healthy" }.map { "\(app.name) \($0.color) \($0.state)" } }
                    if sick.isEmpty {
                        print("\(tip.prefix(8)): applied; every color healthy")
                        return
                    }
                    missing = "\(tip.prefix(8)) applied, but " + sick.joined(separator: ", ")
                case let outcome? where outcome == .failed || outcome == .refused:
                    let note = try store.auditNote(commit: tip) ?? ""
                    for line in note.split(separator: "\n") where line.hasPrefix("error: ") { Console.error(String(line.dropFirst(7))) }
                    Console.error("\(tip.prefix(8)): \(outcome.rawValue)")
                    throw ExitCode(1)
                default:
                    let held = try store.suspensions()
                    missing = "\(tip.prefix(8)) not reconciled yet" + (held.isEmpty ? "" : " (suspended: \(held.all.map { $0.app ?? "every app" }.joined(separator: ", ")))")
                }
            }
            if clock.now >= deadline {
                Console.error("timed out after \(timeout): \(missing)")
                throw ExitCode(3)
            }
            try await Task.sleep(for: interval)
        }
    }
}
