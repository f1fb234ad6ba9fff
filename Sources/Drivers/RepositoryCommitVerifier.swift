import Foundation
import Git
import Reconcile
import Signatures

/// The `CommitVerifier` seam over a repository on this host (the watched one, or a remote's mirror): each
/// commit's `gpgsig` header and signed content read through libgit2, checked by `CommitSignatureVerifier`.
public struct RepositoryCommitVerifier: CommitVerifier {
    public var path: String
    public var verifier: CommitSignatureVerifier

    public init(path: String, policy: SignaturePolicy) {
        self.path = path
        verifier = CommitSignatureVerifier(policy: policy)
    }

    private func open() throws -> Repository {
        do {
            return try Repository(path: path)
        } catch let error as GitError {
            throw ReconcileFailure.transient("cannot open repository \(path): \(error.message)")
        }
    }

    public func commits(tip: String, since lastApplied: String?, mode: VerifyMode) async throws -> [String] {
        guard mode == .all else { return [tip] }
        guard let tipID = ObjectID(hex: tip) else { return [tip] }
        let repository = try open()
        // A last applied commit the tip does not descend from hides nothing it should not: the walk stops at
        // their common history.
        return try repository.commits(from: tipID, excluding: lastApplied.flatMap(ObjectID.init(hex:))).map(\.hex)
    }

    public func verify(_ commit: String) async throws -> String {
        guard let id = ObjectID(hex: commit) else { throw SignatureRefusal(commit: commit, reason: "it is not a commit id") }
        let signed = try open().signedCommit(id)
        do {
            return try verifier.verify(signature: signed.signature, payload: signed.payload, commitTime: signed.committed)
        } catch let error as SignatureError {
            switch error {
            case .allowedSigners:
                throw ReconcileFailure.permanent("cannot use the allowed signers file: \(error)")
            case .unsupported(let why) where why.hasPrefix("cannot read") || why.hasPrefix("cannot run"):
                throw ReconcileFailure.permanent(why)
            default:
                throw SignatureRefusal(commit: commit, reason: error.description)
            }
        }
    }
}
