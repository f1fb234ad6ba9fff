import ArgumentParser
import Foundation
import Git

/// `teal init DIR`: a desired-state repository holding the example app, committed.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Scaffold a desired-state repository with the example app and commit it.")

    @Argument(help: "The folder to create (must not exist, or be empty).")
    var directory: String

    @Option(help: "Copy this folder instead of the bundled example (it must hold apps/).")
    var from: String?

    @Option(help: "The branch to create.")
    var branch = "main"

    func run() throws {
        let fm = FileManager.default
        guard let source = from ?? ExampleManifests.locate() else {
            throw CLIError("cannot find the example manifests; pass --from DIR or set TEAL_EXAMPLES")
        }
        guard fm.fileExists(atPath: (source as NSString).appendingPathComponent("apps")) else {
            throw CLIError("\(source) has no apps/ folder")
        }
        if fm.fileExists(atPath: directory), !((try? fm.contentsOfDirectory(atPath: directory)) ?? []).isEmpty {
            throw CLIError("\(directory) exists and is not empty")
        }
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for item in try fm.contentsOfDirectory(atPath: source) where !item.hasPrefix(".") {
            try fm.copyItem(atPath: (source as NSString).appendingPathComponent(item), toPath: (directory as NSString).appendingPathComponent(item))
        }
        let repo = try Repository.create(at: directory, initialBranch: branch)
        let commit = try repo.commitWorkTree(message: "Desired state for the example app\n", signature: TealIdentity.signature())
        print("Initialised \(directory) on \(branch) at \(commit.short).")
        print("Next: teal plan --repo \(directory)")
    }
}

/// Where the bundled example desired state lives.
enum ExampleManifests {
    /// `$TEAL_EXAMPLES`, then `<prefix>/share/teal/manifests` beside the installed binary, then a
    /// `manifests/` folder above the binary (a source checkout's `.build/<config>/teal`).
    static func locate() -> String? {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["TEAL_EXAMPLES"] { return env }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let share = dir.deletingLastPathComponent().appendingPathComponent("share/teal/manifests")
        if fm.fileExists(atPath: share.appendingPathComponent("apps").path) { return share.path }
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("manifests")
            if fm.fileExists(atPath: candidate.appendingPathComponent("apps").path),
               fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                return candidate.path
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }
}
