import ArgumentParser
import Foundation
import Git

/// `--repo` and `--branch`, shared by the commands that read the desired-state repository.
struct RepoOptions: ParsableArguments {
    @Option(help: "The desired-state git repository (a local path, bare or not).")
    var repo: String

    @Option(help: "The branch teal follows.")
    var branch = "main"

    func open() throws -> Repository {
        do {
            return try Repository(path: repo)
        } catch let error as GitError {
            throw CLIError("cannot open repository '\(repo)': \(error.message)")
        }
    }
}

/// `--data-dir`: teal's state, logs and materialised app folders.
struct DataDirOption: ParsableArguments {
    @Option(help: "teal's data directory: state, logs, materialised app folders.")
    var dataDir = ".teal"

    /// The data dir as an absolute path.
    var path: String {
        URL(fileURLWithPath: dataDir, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL.path
    }
}

/// An error the command line reports as one clear message and exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Who teal says it is in commits and notes when git config has no user.
enum TealIdentity {
    static func signature() -> Signature {
        let env = ProcessInfo.processInfo.environment
        let name = env["GIT_AUTHOR_NAME"] ?? env["GIT_COMMITTER_NAME"] ?? "teal"
        let host = ProcessInfo.processInfo.hostName
        let email = env["GIT_AUTHOR_EMAIL"] ?? env["GIT_COMMITTER_EMAIL"] ?? "teal@\(host.isEmpty ? "localhost" : host)"
        return Signature(name: name, email: email)
    }
}

/// Standard error, for diagnostics.
enum Console {
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }
}
