import ArgumentParser
import Foundation
import Manifest
import Runtime

/// `teal logs APP [COLOR]`: a color's output, per release.
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a color's output (stdout and stderr), for the release it runs now unless --release.",
        discussion: """
            Each release of a color has its own file under <data-dir>/logs (rotated by size while it runs); the last \
            five earlier releases are kept. --since keeps lines whose leading time (2026-12-01T12:00:00Z or \
            2026-12-01 12:00:00) is recent enough; a line without one counts as written at the time of the line \
            before it, or when its release started. Without COLOR, both colors' lines are printed, each prefixed.
            """)

    @OptionGroup var data: DataDirOption

    @Argument(help: "The app.")
    var app: String

    @Argument(help: "blue or green (default: both).")
    var color: String?

    @Flag(name: [.customShort("f"), .long], help: "Keep printing lines as the color writes them.")
    var follow = false

    @Option(help: "Only lines written within this long (10m, 1h).")
    var since: String?

    @Option(help: "Only the last N lines (per color).")
    var tail: Int?

    @Option(help: "Another release's log (its label, as in environment.yaml); see --list.")
    var release: String?

    @Flag(help: "List the releases that have a log, oldest first.")
    var list = false

    func validate() throws {
        try validateApp(app)
        if let color, ColorName(rawValue: color) == nil { throw ValidationError("COLOR is blue or green") }
        if let since, DurationParser.parse(since) == nil { throw ValidationError("--since is a duration such as 10m") }
        if let tail, tail < 0 { throw ValidationError("--tail is a number of lines") }
    }

    func run() async throws {
        guard FileManager.default.fileExists(atPath: data.path) else {
            throw CLIError("no teal data dir at \(data.path) (pass --data-dir or set TEAL_DATA_DIR)")
        }
        let files = LogFiles(dataDir: data.path)
        let colors = color.map { [$0] } ?? ColorName.allCases.map(\.rawValue)
        let cutoff = since.flatMap(DurationParser.parse).map { Date().addingTimeInterval(-Double($0.components.seconds)) }
        var found = false
        var followed: [(color: String, path: String, offset: UInt64)] = []
        for color in colors {
            let releases = files.releases(app: app, color: color)
            if list {
                for r in releases {
                    found = true
                    print("\(color)  \(r.release)  \(r.commit.prefix(8))  \(r.startedAt.map { $0.formatted(.iso8601) } ?? "-")\(r.isCurrent ? "  (running)" : "")")
                }
                continue
            }
            guard let chosen = release.map({ label in releases.last { $0.release == label } }) ?? releases.last(where: \.isCurrent) else { continue }
            found = true
            var lines: [(Date?, String)] = []
            var last = chosen.startedAt
            for file in chosen.files {
                for line in try LogReader.readLines(file) {
                    if let time = LogReader.timestamp(line) { last = time }
                    lines.append((last, line))
                }
            }
            if let cutoff { lines = lines.filter { ($0.0 ?? .distantFuture) >= cutoff } }
            if let tail { lines = Array(lines.suffix(tail)) }
            let prefix = self.color == nil ? "\(color) | " : ""
            for (_, line) in lines { print(prefix + line) }
            if chosen.isCurrent, let path = chosen.files.last { followed.append((color, path, Self.size(path))) }
        }
        guard found else {
            throw CLIError("no log for \(app) \(color ?? "blue or green")\(release.map { " release \($0)" } ?? "") in \(data.path)/logs")
        }
        guard follow, !list else { return }
        fflush(nil)
        while !Task.isCancelled {
            try await Task.sleep(for: .milliseconds(200))
            for index in followed.indices {
                let (color, path, offset) = followed[index]
                let size = Self.size(path)
                // Rotated or replaced by a new release: start again from the top of the file.
                let from = size < offset ? 0 : offset
                guard size > from, let handle = FileHandle(forReadingAtPath: path) else { followed[index].offset = size; continue }
                try handle.seek(toOffset: from)
                let data = handle.readData(ofLength: Int(size - from))
                try? handle.close()
                let prefix = self.color == nil ? "\(color) | " : ""
                let text = String(decoding: data, as: UTF8.self)
                for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0) {
                    print(prefix + line)
                }
                followed[index].offset = size
            }
            fflush(nil)
        }
    }

    static func size(_ path: String) -> UInt64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
    }
}
