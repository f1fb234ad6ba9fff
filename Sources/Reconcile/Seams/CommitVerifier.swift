/// Which commits must carry a trusted signature before their desired state is applied.
public enum VerifyMode: String, Sendable, CaseIterable {
    /// The branch tip.
    case head
    /// Every commit since the last applied one (merged sides included).
    case all
}

/// Checks commit signatures (`--verify`). A commit that does not verify is never applied: its outcome is
/// `refused`, with the reason.
public protocol CommitVerifier: Sendable {
    /// The commits to check for a new tip: `head` the tip alone, `all` every commit reachable from it and not from
    /// `lastApplied`, newest first.
    func commits(tip: String, since lastApplied: String?, mode: VerifyMode) async throws -> [String]
    /// Who signed `commit` when its signature is good and its key trusted; throws `SignatureRefusal` otherwise.
    /// Other errors (the trust files cannot be read) are failures of the agent's configuration, not the commit's.
    func verify(_ commit: String) async throws -> String
}

/// A commit whose signature is missing, does not match it, or is by a key that is not trusted.
public struct SignatureRefusal: Error, Sendable, CustomStringConvertible {
    public var commit: String
    public var reason: String

    public init(commit: String, reason: String) {
        self.commit = commit
        self.reason = reason
    }

    public var description: String { "commit \(commit): \(reason)" }
}
