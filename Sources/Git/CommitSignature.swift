import CLibgit2
import Foundation

/// A commit's signature as git stores it, and the bytes it signs.
public struct SignedCommit: Sendable {
    /// The `gpgsig` header's value (an armored SSH or OpenPGP signature), nil when the commit is not signed.
    public var signature: String?
    /// What the signature signs: the raw commit object without its `gpgsig` header (git's own rule, through
    /// libgit2's `git_commit_extract_signature`); the whole object when unsigned.
    public var payload: [UInt8]
    /// The committer's time.
    public var committed: Date
}

extension Repository {
    /// The signature of a commit and what it signs.
    public func signedCommit(_ id: ObjectID) throws -> SignedCommit {
        var oid = id.oid
        var signature = git_buf(), signed = git_buf()
        defer {
            git_buf_dispose(&signature)
            git_buf_dispose(&signed)
        }
        let committed = try withCommit(id) { commit in
            Date(timeIntervalSince1970: TimeInterval(git_commit_committer(commit)!.pointee.when.time))
        }
        let code = git_commit_extract_signature(&signature, &signed, pointer, &oid, nil)
        if code == GIT_ENOTFOUND.rawValue {
            return SignedCommit(signature: nil, payload: try rawObject(id), committed: committed)
        }
        try check(code, "read the signature of \(id.short)")
        let text = String(decoding: UnsafeRawBufferPointer(start: signature.ptr, count: signature.size), as: UTF8.self)
        let payload = Array(UnsafeRawBufferPointer(start: signed.ptr, count: signed.size))
        return SignedCommit(signature: text, payload: payload, committed: committed)
    }

    /// An object's raw content from the object database.
    public func rawObject(_ id: ObjectID) throws -> [UInt8] {
        var odb: OpaquePointer?
        try check(git_repository_odb(&odb, pointer), "open the object database")
        defer { git_odb_free(odb) }
        var object: OpaquePointer?
        var oid = id.oid
        try check(git_odb_read(&object, odb, &oid), "read object \(id.short)")
        defer { git_odb_object_free(object) }
        return Array(UnsafeRawBufferPointer(start: git_odb_object_data(object), count: git_odb_object_size(object)))
    }

    /// Every commit reachable from `tip` and not from `excluded` (all parents, merges' sides included), newest
    /// first, at most `limit`.
    public func commits(from tip: ObjectID, excluding excluded: ObjectID?, limit: Int = 10_000) throws -> [ObjectID] {
        var walk: OpaquePointer?
        try check(git_revwalk_new(&walk, pointer), "start history walk")
        defer { git_revwalk_free(walk) }
        git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_TIME.rawValue)
        var start = tip.oid
        try check(git_revwalk_push(walk, &start), "walk from \(tip.short)")
        if let excluded {
            var hidden = excluded.oid
            try check(git_revwalk_hide(walk, &hidden), "walk from \(tip.short) to \(excluded.short)")
        }
        var result: [ObjectID] = []
        var oid = git_oid()
        while result.count < limit, git_revwalk_next(&oid, walk) == 0 { result.append(ObjectID(oid)) }
        return result
    }
}
