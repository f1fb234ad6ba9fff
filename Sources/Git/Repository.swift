import CLibgit2
import Foundation

/// A git repository opened through libgit2. Not thread-safe: own it from one task or actor.
public final class Repository {
    let pointer: OpaquePointer

    /// Opens the repository at `path` (a work tree, its .git folder, or a bare repository).
    public init(path: String) throws {
        Libgit2.ensure()
        var repo: OpaquePointer?
        let flags = GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue
        try check(git_repository_open_ext(&repo, path, flags, nil), "open repository \(path)")
        pointer = repo!
    }

    init(adopting pointer: OpaquePointer) { self.pointer = pointer }

    /// Creates a new non-bare repository whose HEAD is `branch`.
    public static func create(at path: String, initialBranch: String = "main") throws -> Repository {
        Libgit2.ensure()
        var options = git_repository_init_options()
        try check(git_repository_init_options_init(&options, UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION)), "init options")
        options.flags = GIT_REPOSITORY_INIT_MKPATH.rawValue
        var repo: OpaquePointer?
        try initialBranch.withCString { head in
            options.initial_head = head
            try check(git_repository_init_ext(&repo, path, &options), "create repository \(path)")
        }
        return Repository(adopting: repo!)
    }

    deinit { git_repository_free(pointer) }

    public var isBare: Bool { git_repository_is_bare(pointer) == 1 }

    /// The work tree folder, nil for a bare repository.
    public var workdir: String? { git_repository_workdir(pointer).map { String(cString: $0) } }

    // MARK: - Resolving

    /// Resolves any revision (`main`, `HEAD~1`, a sha, a tag) to a commit id.
    public func resolve(_ revision: String) throws -> ObjectID {
        var object: OpaquePointer?
        try check(git_revparse_single(&object, pointer, revision), "resolve '\(revision)'")
        defer { git_object_free(object) }
        var commit: OpaquePointer?
        try check(git_object_peel(&commit, object, GIT_OBJECT_COMMIT), "'\(revision)' is not a commit")
        defer { git_object_free(commit) }
        return ObjectID(git_object_id(commit).pointee)
    }

    /// The commit a branch points at, or nil when the branch does not exist. Cheap: one ref read.
    public func branchTip(_ branch: String) throws -> ObjectID? {
        var oid = git_oid()
        let code = git_reference_name_to_id(&oid, pointer, "refs/heads/\(branch)")
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try check(code, "read branch \(branch)")
        return ObjectID(oid)
    }

    /// Points `refs/notes/teal` at the notes commit `ref` names (the remote's), unless ours already has it in its
    /// history: a note added next goes on top of the remote's notes and its push fast-forwards. Notes of ours the
    /// remote never got are left out of the ref (the state store keeps every outcome).
    public func adoptNotes(from ref: String, notesRef: String = Repository.defaultNotesRef) throws {
        var theirs = git_oid()
        guard git_reference_name_to_id(&theirs, pointer, ref) == 0 else { return }
        var ours = git_oid()
        if git_reference_name_to_id(&ours, pointer, notesRef) == 0 {
            if git_oid_equal(&ours, &theirs) == 1 || git_graph_descendant_of(pointer, &ours, &theirs) == 1 { return }
        }
        var reference: OpaquePointer?
        try check(git_reference_create(&reference, pointer, notesRef, &theirs, 1, "teal: notes from the remote"), "update \(notesRef)")
        git_reference_free(reference)
    }

    /// Whether `ancestor` is `commit` or one of its ancestors.
    public func isAncestor(_ ancestor: ObjectID, of commit: ObjectID) throws -> Bool {
        if ancestor == commit { return true }
        var a = ancestor.oid, c = commit.oid
        return try check(git_graph_descendant_of(pointer, &c, &a), "compare \(commit.short) with \(ancestor.short)") == 1
    }

    func withCommit<T>(_ id: ObjectID, _ body: (OpaquePointer) throws -> T) throws -> T {
        var oid = id.oid
        var commit: OpaquePointer?
        try check(git_commit_lookup(&commit, pointer, &oid), "look up commit \(id.short)")
        defer { git_commit_free(commit) }
        return try body(commit!)
    }

    public func commitInfo(_ id: ObjectID) throws -> CommitInfo {
        try withCommit(id) { commit in
            let author = git_commit_author(commit)!.pointee
            let message = git_commit_message(commit).map { String(cString: $0) } ?? ""
            let parents = (0..<git_commit_parentcount(commit)).map { ObjectID(git_commit_parent_id(commit, $0).pointee) }
            return CommitInfo(
                id: id, parents: parents,
                authorName: author.name.map { String(cString: $0) } ?? "",
                authorEmail: author.email.map { String(cString: $0) } ?? "",
                date: Date(timeIntervalSince1970: TimeInterval(author.when.time)),
                subject: message.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "",
                message: message)
        }
    }

    // MARK: - Trees

    /// The tree of a commit, read from the object database (never the work tree).
    public func tree(at commit: ObjectID) throws -> CommitTree {
        try withCommit(commit) { c in
            var tree: OpaquePointer?
            try check(git_commit_tree(&tree, c), "read tree of \(commit.short)")
            return CommitTree(repository: self, tree: tree!, commit: commit)
        }
    }

    // MARK: - History

    /// Commits reachable from `start`, newest first; with `path`, only those whose first-parent
    /// diff changes something at or under `path`.
    public func log(from start: ObjectID, touching path: String? = nil, limit: Int = .max) throws -> [CommitInfo] {
        var walk: OpaquePointer?
        try check(git_revwalk_new(&walk, pointer), "start history walk")
        defer { git_revwalk_free(walk) }
        git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_TIME.rawValue)
        var startOid = start.oid
        try check(git_revwalk_push(walk, &startOid), "walk from \(start.short)")
        var result: [CommitInfo] = []
        var oid = git_oid()
        while result.count < limit, git_revwalk_next(&oid, walk) == 0 {
            let id = ObjectID(oid)
            let info = try commitInfo(id)
            if let path {
                let here = try tree(at: id).entryID(path)
                let before = try info.parents.first.map { try tree(at: $0).entryID(path) } ?? nil
                if here == before { continue }
            }
            result.append(info)
        }
        return result
    }

    // MARK: - Notes

    public static let defaultNotesRef = "refs/notes/teal"

    /// The note attached to a commit under `ref`, or nil.
    public func note(for commit: ObjectID, ref: String = Repository.defaultNotesRef) throws -> String? {
        var note: OpaquePointer?
        var oid = commit.oid
        let code = git_note_read(&note, pointer, ref, &oid)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try check(code, "read note of \(commit.short)")
        defer { git_note_free(note) }
        return git_note_message(note).map { String(cString: $0) }
    }

    /// Writes (or replaces) the note of a commit under `ref`.
    public func setNote(_ message: String, for commit: ObjectID, ref: String = Repository.defaultNotesRef,
                        signature: Signature) throws {
        var oid = commit.oid
        var noteOid = git_oid()
        try signature.withPointer { sig in
            try check(git_note_create(&noteOid, pointer, ref, sig, sig, &oid, message, 1), "write note on \(commit.short)")
        }
    }

    // MARK: - Writing commits

    /// Stages every file of the work tree and commits it on HEAD (used by `teal init`).
    @discardableResult
    public func commitWorkTree(message: String, signature: Signature) throws -> ObjectID {
        var index: OpaquePointer?
        try check(git_repository_index(&index, pointer), "open index")
        defer { git_index_free(index) }
        var paths = git_strarray()
        try check(git_index_add_all(index, &paths, 0, nil, nil), "stage files")
        try check(git_index_write(index), "write index")
        var treeOid = git_oid()
        try check(git_index_write_tree(&treeOid, index), "write tree")
        var parents: [ObjectID] = []
        if let head = try? resolve("HEAD") { parents.append(head) }
        return try createCommit(tree: treeOid, parents: parents, updating: "HEAD", message: message, signature: signature)
    }

    /// Commits the revert of `commit` on top of `branch` without touching any work tree other
    /// than a checked-out `branch` (which is updated safely, refusing to overwrite local edits).
    @discardableResult
    public func revert(_ commit: ObjectID, onBranch branch: String, mainline: Int = 1, signature: Signature) throws -> ObjectID {
        guard let tip = try branchTip(branch) else {
            throw GitError(code: -3, operation: "revert", message: "branch '\(branch)' does not exist")
        }
        let info = try commitInfo(commit)
        guard info.parents.count <= 1 || (1...info.parents.count).contains(mainline) else {
            throw GitError(code: -1, operation: "revert \(commit.short)",
                           message: "it is a merge of \(info.parents.count) parents; --mainline must be 1 to \(info.parents.count)")
        }
        guard !info.parents.isEmpty else {
            throw GitError(code: -1, operation: "revert \(commit.short)", message: "it is the root commit and has nothing to revert to")
        }
        var index: OpaquePointer?
        try withCommit(commit) { revertCommit in
            try withCommit(tip) { ours in
                // For a merge, the changes it brought relative to parent `mainline` are undone (git revert -m).
                try check(git_revert_commit(&index, pointer, revertCommit, ours, info.parents.count > 1 ? UInt32(mainline) : 0, nil),
                          "revert \(commit.short)")
            }
        }
        defer { git_index_free(index) }
        if git_index_has_conflicts(index) == 1 {
            throw GitError(code: -13, operation: "revert \(commit.short)",
                           message: "it conflicts with later commits on \(branch); revert those first or resolve by hand")
        }
        var treeOid = git_oid()
        try check(git_index_write_tree_to(&treeOid, index, pointer), "write reverted tree")

        // Keep a checked-out branch's index and files in step, as git revert would.
        if !isBare, try currentBranch() == branch {
            var tree: OpaquePointer?
            try check(git_tree_lookup(&tree, pointer, &treeOid), "look up reverted tree")
            defer { git_tree_free(tree) }
            var options = git_checkout_options()
            try check(git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION)), "checkout options")
            options.checkout_strategy = GIT_CHECKOUT_SAFE.rawValue
            try check(git_checkout_tree(pointer, tree, &options), "update the work tree (local edits in the way?)")
        }
        let message = "Revert \"\(info.subject)\"\n\nThis reverts commit \(commit.hex).\n"
        return try createCommit(tree: treeOid, parents: [tip], updating: "refs/heads/\(branch)", message: message, signature: signature)
    }

    /// The branch HEAD points at, nil when detached.
    public func currentBranch() throws -> String? {
        var ref: OpaquePointer?
        let code = git_reference_lookup(&ref, pointer, "HEAD")
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try check(code, "read HEAD")
        defer { git_reference_free(ref) }
        guard git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC, let target = git_reference_symbolic_target(ref) else { return nil }
        let name = String(cString: target)
        return name.hasPrefix("refs/heads/") ? String(name.dropFirst("refs/heads/".count)) : nil
    }

    private func createCommit(tree treeOid: git_oid, parents: [ObjectID], updating ref: String, message: String,
                              signature: Signature) throws -> ObjectID {
        var treeOid = treeOid
        var tree: OpaquePointer?
        try check(git_tree_lookup(&tree, pointer, &treeOid), "look up tree")
        defer { git_tree_free(tree) }
        var parentPointers: [OpaquePointer?] = []
        defer { parentPointers.forEach { git_commit_free($0) } }
        for parent in parents {
            var oid = parent.oid
            var commit: OpaquePointer?
            try check(git_commit_lookup(&commit, pointer, &oid), "look up parent \(parent.short)")
            parentPointers.append(commit)
        }
        var newOid = git_oid()
        try signature.withPointer { sig in
            try parentPointers.withUnsafeMutableBufferPointer { buffer in
                try check(git_commit_create(&newOid, pointer, ref, sig, sig, nil, message, tree, parents.count, buffer.baseAddress),
                          "create commit")
            }
        }
        return ObjectID(newOid)
    }
}
