import ArgumentParser
import Foundation
import Git
import State

/// `teal history`: the commits that changed apps/, with their reconcile outcomes.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List commits touching apps/, newest first, with their reconcile outcome from refs/notes/teal.")

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "Show at most this many commits.")
    var limit = 50

    struct Entry: Codable {
        var commit: String
        var author: String
        var date: Date
        var subject: String
        var outcome: String?
        var note: String?
    }

    func run() async throws {
        let repository = try await repo.open(dataDir: data.path)
        guard let tip = try repository.branchTip(repo.branch) else { throw CLIError("branch '\(repo.branch)' does not exist in \(repo.path)") }
        let entries = try repository.log(from: tip, touching: "apps", limit: limit).map { info -> Entry in
            let note = try repository.note(for: info.id)
            return Entry(commit: info.id.hex, author: "\(info.authorName) <\(info.authorEmail)>", date: info.date, subject: info.subject,
                         outcome: note.flatMap(Self.outcome(of:)), note: note)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            print(String(decoding: try encoder.encode(entries), as: UTF8.self))
            return
        }
        let formatter = ISO8601DateFormatter()
        for e in entries {
            let outcome = e.outcome ?? "-"
            print("\(e.commit.prefix(8))  \(formatter.string(from: e.date))  \(outcome.padding(toLength: 10, withPad: " ", startingAt: 0))  \(e.subject)  (\(e.author))")
        }
    }

    /// The outcome a teal note records; with records from several agents that disagree, each of theirs
    /// (`applied,failed`).
    static func outcome(of note: String) -> String? {
        var seen: [String] = []
        for outcome in AuditNote.outcomes(note) where !seen.contains(outcome) { seen.append(outcome) }
        return seen.isEmpty ? nil : seen.joined(separator: ",")
    }
}
