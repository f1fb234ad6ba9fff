import ArgumentParser
import Foundation
import Git
import Logging
import State

/// `--repo` and `--branch`, shared by the commands that read the desired-state repository.
struct RepoOptions: ParsableArguments {
    @Option(help: "The desired-state git repository (a local path, bare or not). Default: $TEAL_REPO.")
    var repo: String?

    @Option(help: "The branch teal follows.")
    var branch = "main"

    func validate() throws {
        if repo == nil && ProcessInfo.processInfo.environment["TEAL_REPO"].map({ !$0.isEmpty }) != true {
            throw ValidationError("Missing expected argument '--repo <repo>' (or set TEAL_REPO)")
        }
    }

    /// The repository as given, or `$TEAL_REPO`.
    var path: String { repo ?? ProcessInfo.processInfo.environment["TEAL_REPO"] ?? "" }

    func open() throws -> Repository {
        do {
            return try Repository(path: path)
        } catch let error as GitError {
            throw CLIError("cannot open repository '\(path)': \(error.message)")
        }
    }
}

/// `--data-dir`: teal's state, logs and materialised app folders.
struct DataDirOption: ParsableArguments {
    @Option(help: "teal's data directory: state, logs, materialised app folders. Default: $TEAL_DATA_DIR, else .teal.")
    var dataDir: String?

    /// The data dir as an absolute path.
    var path: String {
        let given = dataDir ?? ProcessInfo.processInfo.environment["TEAL_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? ".teal"
        return URL(fileURLWithPath: given, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL.path
    }

    /// The state store of an existing data dir, for commands that only read; nothing is created.
    func existingStore() throws -> StateStore? {
        do {
            return try StateStore(existingDataDir: path)
        } catch {
            throw CLIError("cannot read the state store in \(path): \(error)")
        }
    }
}

/// The log level from `$LOG_LEVEL`, else `fallback`.
func logger(_ label: String, level fallback: Logger.Level) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? fallback
    return logger
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
