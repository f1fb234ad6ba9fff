import ArgumentParser
import CLibgit2
import Foundation
import State

/// teal's version, and the versions of the libraries it runs with.
enum TealVersion {
    static let current = "0.5.0"

    static var libgit2: String {
        var major: Int32 = 0, minor: Int32 = 0, revision: Int32 = 0
        git_libgit2_version(&major, &minor, &revision)
        return "\(major).\(minor).\(revision)"
    }

    static var all: [String: String] { ["teal": current, "libgit2": libgit2, "sqlite": StateStore.sqliteVersion()] }

    /// What `teal --version` and `teal version` print.
    static var text: String { "teal \(current)\nlibgit2 \(libgit2)\nSQLite \(StateStore.sqliteVersion())" }
}

/// `teal version`: teal's version, libgit2's and SQLite's.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print teal's version and the versions of libgit2 and SQLite it runs with.")

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(TealVersion.all), as: UTF8.self))
        } else {
            print(TealVersion.text)
        }
    }
}
