import CLibgit2

/// The tree of one commit. Files are read from the object database, never a work tree.
public final class CommitTree {
    let repository: Repository
    let tree: OpaquePointer
    public let commit: ObjectID

    init(repository: Repository, tree: OpaquePointer, commit: ObjectID) {
        self.repository = repository
        self.tree = tree
        self.commit = commit
    }

    deinit { git_tree_free(tree) }

    public enum EntryKind: Sendable { case file, executable, directory, symlink, submodule }

    public struct Entry: Sendable, Hashable {
        public var name: String
        public var kind: EntryKind
        public var id: ObjectID
    }

    private func withEntry<T>(_ path: String, _ body: (OpaquePointer) throws -> T) throws -> T? {
        let clean = path.split(separator: "/").joined(separator: "/")
        if clean.isEmpty { return nil }
        var entry: OpaquePointer?
        let code = git_tree_entry_bypath(&entry, tree, clean)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try check(code, "read \(clean) at \(commit.short)")
        defer { git_tree_entry_free(entry) }
        return try body(entry!)
    }

    static func kind(_ entry: OpaquePointer) -> EntryKind {
        switch git_tree_entry_filemode(entry) {
        case GIT_FILEMODE_TREE: .directory
        case GIT_FILEMODE_BLOB_EXECUTABLE: .executable
        case GIT_FILEMODE_LINK: .symlink
        case GIT_FILEMODE_COMMIT: .submodule
        default: .file
        }
    }

    /// The object id at `path` (file or folder), nil when absent. "" is the root tree.
    public func entryID(_ path: String) throws -> ObjectID? {
        if path.split(separator: "/").isEmpty { return ObjectID(git_tree_id(tree).pointee) }
        return try withEntry(path) { ObjectID(git_tree_entry_id($0).pointee) }
    }

    /// The entries of a folder ("" is the root), nil when there is no such folder.
    public func entries(_ directory: String) throws -> [Entry]? {
        let read: (OpaquePointer) -> [Entry] = { tree in
            (0..<git_tree_entrycount(tree)).map { i in
                let e = git_tree_entry_byindex(tree, i)!
                return Entry(name: String(cString: git_tree_entry_name(e)), kind: Self.kind(e), id: ObjectID(git_tree_entry_id(e).pointee))
            }
        }
        if directory.split(separator: "/").isEmpty { return read(tree) }
        return try withEntry(directory) { entry -> [Entry]? in
            guard Self.kind(entry) == .directory else { return nil }
            var sub: OpaquePointer?
            try check(git_tree_lookup(&sub, repository.pointer, git_tree_entry_id(entry)), "read folder \(directory)")
            defer { git_tree_free(sub) }
            return read(sub!)
        } ?? nil
    }

    /// The bytes of a file (or a symlink's target), nil when absent or a folder.
    public func contents(_ path: String) throws -> [UInt8]? {
        try withEntry(path) { entry -> [UInt8]? in
            guard Self.kind(entry) != .directory, Self.kind(entry) != .submodule else { return nil }
            var blob: OpaquePointer?
            try check(git_blob_lookup(&blob, repository.pointer, git_tree_entry_id(entry)), "read \(path)")
            defer { git_blob_free(blob) }
            let size = Int(git_blob_rawsize(blob))
            guard size > 0, let raw = git_blob_rawcontent(blob) else { return [] }
            return Array(UnsafeRawBufferPointer(start: raw, count: size))
        } ?? nil
    }

    /// Every file under `directory`, recursively, as (path relative to directory, entry).
    public func files(under directory: String) throws -> [(path: String, entry: Entry)] {
        guard let top = try entries(directory) else { return [] }
        var result: [(String, Entry)] = []
        for entry in top {
            if entry.kind == .directory {
                let sub = directory.isEmpty ? entry.name : "\(directory)/\(entry.name)"
                result += try files(under: sub).map { ("\(entry.name)/\($0.path)", $0.entry) }
            } else {
                result.append((entry.name, entry))
            }
        }
        return result
    }
}
