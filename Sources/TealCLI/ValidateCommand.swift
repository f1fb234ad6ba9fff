import ArgumentParser
import Desired
import Git
import Manifest
import Drivers

/// `teal validate`: parse and check a commit's desired state.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Parse and check the desired state at a commit; print file:line errors.",
        discussion: "Exit status: 0 valid, 1 any error.")

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption

    @Option(help: "The revision to check (a branch, HEAD~1, a sha). Defaults to the branch tip.")
    var rev: String?

    func run() async throws {
        let repository = try await repo.open(dataDir: data.path)
        let state = try DesiredInput.read(repository, revision: rev ?? repo.branch)
        let apps = state.apps.keys.sorted()
        // What an SQLite app's database cannot express, and a dry-run of every migration on an in-memory database.
        let schemas = SchemaBackendCatalog(dataDir: data.path)
        let problems = apps.compactMap { state.apps[$0] }.flatMap { schemas.validate($0.migrations, for: $0.environment.database) }
        if !problems.isEmpty {
            for d in ManifestErrors(problems).diagnostics { Console.error(d.description) }
            Console.error("\(problems.count) error\(problems.count == 1 ? "" : "s") at \(rev ?? repo.branch)")
            throw ExitCode(1)
        }
        print("ok: \(apps.count) app\(apps.count == 1 ? "" : "s") (\(apps.joined(separator: ", "))) at \(state.commit.prefix(8))")
    }
}

/// Reading the desired state for a command, with errors printed as file:line lines.
enum DesiredInput {
    static func read(_ repository: Repository, revision: String) throws -> DesiredState {
        do {
            return try DesiredStateReader(repository: repository).read(revision: revision)
        } catch let errors as ManifestErrors {
            report(errors, revision: revision)
            throw ExitCode(1)
        } catch let error as GitError {
            throw CLIError(error.description)
        }
    }

    /// Prints every diagnostic as file:line, then the count.
    static func report(_ errors: ManifestErrors, revision: String) {
        for d in errors.diagnostics { Console.error(d.description) }
        Console.error("\(errors.diagnostics.count) error\(errors.diagnostics.count == 1 ? "" : "s") at \(revision)")
    }
}
