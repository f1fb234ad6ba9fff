import Crypto
import Foundation

/// Checks `X-Hub-Signature-256: sha256=<hex>` (HMAC-SHA256 of the body), as GitHub sends it.
public struct WebhookSignature: Sendable {
    let secret: [UInt8]

    public init(secret: String) { self.secret = Array(secret.utf8) }

    var key: SymmetricKey { SymmetricKey(data: secret) }

    /// The header value for a body.
    public func sign(_ body: [UInt8]) -> String {
        "sha256=" + hex(body)
    }

    /// The bare hex HMAC-SHA256 of a body, as Gitea sends it in `X-Gitea-Signature`.
    public func hex(_ body: [UInt8]) -> String {
        HMAC<SHA256>.authenticationCode(for: body, using: key).map { String(format: "%02x", $0) }.joined()
    }

    /// True when `header` is the body's signature (compared in constant time).
    public func verify(_ body: [UInt8], header: String?) -> Bool {
        guard let header, header.hasPrefix("sha256=") else { return false }
        return verifyHex(body, header: String(header.dropFirst(7)))
    }

    /// True when `header` is the body's bare hex HMAC-SHA256 (Gitea, Forgejo), compared in constant time.
    public func verifyHex(_ body: [UInt8], header: String?) -> Bool {
        guard let header, let mac = Self.hexBytes(header.trimmingCharacters(in: .whitespaces).lowercased()) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: key)
    }

    /// True when `token` is the secret itself (GitLab's `X-Gitlab-Token`), compared in constant time: both are
    /// hashed first, so neither their contents nor their lengths show in the time taken.
    public func verifyToken(_ token: String?) -> Bool {
        guard let token else { return false }
        let given = SHA256.hash(data: Array(token.utf8)), expected = SHA256.hash(data: secret)
        var difference: UInt8 = 0
        for (a, b) in zip(given, expected) { difference |= a ^ b }
        return difference == 0
    }

    static func hexBytes(_ hex: String) -> [UInt8]? {
        guard hex.count == 64 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}

/// Who sent a webhook to `POST /hooks/git`, told by the header it authenticated with, and whether it did.
public enum WebhookSender: String, Sendable, Equatable {
    case github, gitlab, gitea, forgejo

    public enum Verdict: Sendable, Equatable {
        case accepted(WebhookSender)
        /// Why it was refused (answered 401).
        case refused(String)
    }

    /// Checks a delivery against the shared secret. The provider is recognised by its header, in this order:
    /// `X-Gitlab-Token` (the secret itself), `X-Forgejo-Signature` and `X-Gitea-Signature` (bare hex HMAC-SHA256
    /// of the body), `X-Hub-Signature-256` (`sha256=` and the hex HMAC-SHA256, GitHub's). The first one present
    /// decides: a wrong one is not rescued by another header.
    public static func check(header: (String) -> String?, body: [UInt8], signature: WebhookSignature) -> Verdict {
        if let token = header("x-gitlab-token") {
            return signature.verifyToken(token) ? .accepted(.gitlab) : .refused("X-Gitlab-Token is not the webhook secret")
        }
        if let value = header("x-forgejo-signature") {
            return signature.verifyHex(body, header: value) ? .accepted(.forgejo) : .refused("bad X-Forgejo-Signature")
        }
        if let value = header("x-gitea-signature") {
            return signature.verifyHex(body, header: value) ? .accepted(.gitea) : .refused("bad X-Gitea-Signature")
        }
        if let value = header("x-hub-signature-256") {
            return signature.verify(body, header: value) ? .accepted(.github) : .refused("bad X-Hub-Signature-256")
        }
        return .refused("missing X-Hub-Signature-256 (GitHub), X-Gitlab-Token (GitLab) or X-Gitea-Signature (Gitea)")
    }
}
