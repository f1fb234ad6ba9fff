import ArgumentParser
import CLibgit2
import Foundation
import Git

/// `teal rollback`: commit the revert of a commit, as `git revert` would.
struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Commit a revert of COMMIT (default: the branch tip) on the branch.",
        discussion: """
            The revert is committed as you: --author, else GIT_AUTHOR_NAME/GIT_AUTHOR_EMAIL, else user.name and \
            user.email from git config (the repository's, then yours), else teal. A revert that would change nothing \
            (the commit's changes are already undone on the branch) is refused. --dry-run prints what the revert \
            would change and commits nothing. A merge commit is reverted against its first parent (the branch it was merged \
            into), or the parent --mainline names, as git revert -m does.
            """)

    @OptionGroup var repo: RepoOptions

    @Argument(help: "The commit to revert (any revision).")
    var commit: String?

    @Option(help: "Who the revert is by: 'Name <email>'.")
    var author: String?

    @Option(help: "For a merge commit: the parent (1-based) whose side is kept, as git revert -m.")
    var mainline = 1

    @Flag(help: "Print what the revert would change; commit nothing.")
    var dryRun = false

    func validate() throws {
        if let author, Self.parse(author: author) == nil { throw ValidationError("--author is 'Name <email>'") }
    }

    func run() throws {
        let repository = try repo.open()
        do {
            guard let tip = try repository.branchTip(repo.branch) else { throw CLIError("branch '\(repo.branch)' does not exist in \(repo.path)") }
            let target = try repository.resolve(commit ?? repo.branch)
            let info = try repository.commitInfo(target)
            guard !info.parents.isEmpty else { throw CLIError("\(target.short) is the root commit and has nothing to revert to") }
            guard (1...info.parents.count).contains(mainline) else {
                throw CLIError("\(target.short) has \(info.parents.count) parent\(info.parents.count == 1 ? "" : "s"); --mainline must be 1"
                    + (info.parents.count > 1 ? " to \(info.parents.count)" : ""))
            }
            let changes = try Self.changes(in: repository, commit: target, parent: info.parents[mainline - 1], tip: tip)
            guard !changes.isEmpty else {
                throw CLIError("nothing to revert: the changes of \(target.short) (\"\(info.subject)\") are already undone on \(repo.branch)")
            }
            let signature = try identity(repository)
            if dryRun {
                print("Would revert \(target.short) (\"\(info.subject)\") on \(repo.branch) as \(signature.name) <\(signature.email)>:")
                for change in changes { print(change) }
                return
            }
            let revert = try repository.revert(target, onBranch: repo.branch, mainline: mainline, signature: signature)
            print("Reverted \(target.short) as \(revert.short) on \(repo.branch).")
            for change in changes { print(change) }
        } catch let error as GitError {
            throw CLIError(error.description)
        }
    }

    /// Per file the revert changes on the branch tip: its path, and for small text files the lines it removes and adds.
    static func changes(in repository: Repository, commit: ObjectID, parent: ObjectID, tip: ObjectID) throws -> [String] {
        let after = try repository.tree(at: commit), before = try repository.tree(at: parent), now = try repository.tree(at: tip)
        let afterFiles = Dictionary(try after.files(under: "").map { ($0.path, $0.entry.id) }, uniquingKeysWith: { a, _ in a })
        let beforeFiles = Dictionary(try before.files(under: "").map { ($0.path, $0.entry.id) }, uniquingKeysWith: { a, _ in a })
        var lines: [String] = []
        for path in Set(afterFiles.keys).union(beforeFiles.keys).sorted() where afterFiles[path] != beforeFiles[path] {
            let current = try now.entryID(path)
            // Already as it was before the commit: the revert leaves this file alone.
            if current == beforeFiles[path] { continue }
            switch (current, beforeFiles[path]) {
            case (nil, _?): lines.append("  restore \(path)")
            case (_?, nil): lines.append("  delete  \(path)")
            default: lines.append("  change  \(path)")
            }
            let old = try now.contents(path).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let new = try before.contents(path).map { String(decoding: $0, as: UTF8.self) } ?? ""
            guard old.utf8.count + new.utf8.count < 64 << 10 else { continue }
            let oldLines = old.split(separator: "\n", omittingEmptySubsequences: false), newLines = new.split(separator: "\n", omittingEmptySubsequences: false)
            for line in oldLines where !line.isEmpty && !newLines.contains(line) { lines.append("    - \(line)") }
            for line in newLines where !line.isEmpty && !oldLines.contains(line) { lines.append("    + \(line)") }
        }
        return lines
    }

    func identity(_ repository: Repository) throws -> Signature {
        if let author, let parsed = Self.parse(author: author) { return Signature(name: parsed.name, email: parsed.email) }
        let env = ProcessInfo.processInfo.environment
        if let name = env["GIT_AUTHOR_NAME"], let email = env["GIT_AUTHOR_EMAIL"] { return Signature(name: name, email: email) }
        let local = repository.isBare ? "\(repo.path)/config" : (repository.workdir.map { "\($0).git/config" } ?? "\(repo.path)/config")
        if let configured = GitConfigIdentity.read(repositoryConfig: local) { return configured }
        return TealIdentity.signature()
    }

    /// `Name <email>`.
    static func parse(author: String) -> (name: String, email: String)? {
        guard let open = author.lastIndex(of: "<"), author.hasSuffix(">") else { return nil }
        let name = author[..<open].trimmingCharacters(in: .whitespaces)
        let email = String(author[author.index(after: open)..<author.index(before: author.endIndex)])
        return name.isEmpty || email.isEmpty ? nil : (name, email)
    }
}

/// user.name and user.email from git config: the repository's own file over the user's and the system's.
enum GitConfigIdentity {
    static func read(repositoryConfig: String) -> Signature? {
        git_libgit2_init()
        var config: OpaquePointer?
        guard git_config_open_default(&config) == 0 else { return nil }
        defer { git_config_free(config) }
        if FileManager.default.fileExists(atPath: repositoryConfig) {
            _ = git_config_add_file_ondisk(config, repositoryConfig, GIT_CONFIG_LEVEL_LOCAL, nil, 1)
        }
        var snapshot: OpaquePointer?
        guard git_config_snapshot(&snapshot, config) == 0 else { return nil }
        defer { git_config_free(snapshot) }
        func value(_ key: String) -> String? {
            var out: UnsafePointer<CChar>?
            guard git_config_get_string(&out, snapshot, key) == 0, let out else { return nil }
            let text = String(cString: out)
            return text.isEmpty ? nil : text
        }
        guard let name = value("user.name"), let email = value("user.email") else { return nil }
        return Signature(name: name, email: email)
    }
}
