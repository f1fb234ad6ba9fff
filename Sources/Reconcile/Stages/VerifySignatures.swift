import Foundation
import State

extension ReconcilePipeline {
    /// Stage 1b (with `--verify`): the new tip, or every commit since the last applied one, must carry a good
    /// signature by a trusted key. Returns the refusal's message, nil when every commit checked verifies.
    func verifySignatures(_ revision: Revision) async throws -> String? {
        guard let mode = configuration.verify else { return nil }
        guard let verifier = drivers.verifier else {
            throw ReconcileFailure.permanent("--verify \(mode.rawValue) is set, but this source cannot check signatures")
        }
        let applied = try store.meta("last_applied_commit")
        let commits = try await verifier.commits(tip: revision.tip, since: applied, mode: mode)
        for commit in commits {
            do {
                let signer = try await verifier.verify(commit)
                logger.debug("\(commit.prefix(8)) is signed by \(signer)")
            } catch let refusal as SignatureRefusal {
                let which = commit == revision.tip ? "the tip" : "\(commit.prefix(8)), a commit between \(applied.map { String($0.prefix(8)) } ?? "the start") and the tip"
                return "signature check (--verify \(mode.rawValue)) failed for \(which): \(refusal); it is not applied"
                    + (applied.map { " and \($0.prefix(8)) keeps serving" } ?? "")
            }
        }
        return nil
    }
}
