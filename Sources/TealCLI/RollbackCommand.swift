import ArgumentParser
import Git

/// `teal rollback`: commit the revert of a commit, as `git revert` would.
struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Commit a revert of COMMIT (default: the branch tip) on the branch.")

    @OptionGroup var repo: RepoOptions

    @Argument(help: "The commit to revert (any revision).")
    var commit: String?

    func run() throws {
        let repository = try repo.open()
        do {
            let target = try repository.resolve(commit ?? repo.branch)
            let revert = try repository.revert(target, onBranch: repo.branch, signature: TealIdentity.signature())
            print("Reverted \(target.short) as \(revert.short) on \(repo.branch).")
        } catch let error as GitError {
            throw CLIError(error.description)
        }
    }
}
