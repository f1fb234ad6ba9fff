import Crypto
import Foundation

/// Checks `X-Hub-Signature-256: sha256=<hex>` (HMAC-SHA256 of the body), as GitHub sends it.
public struct WebhookSignature: Sendable {
    let secret: [UInt8]

    public init(secret: String) { self.secret = Array(secret.utf8) }

    var key: SymmetricKey { SymmetricKey(data: secret) }

    /// The header value for a body.
    public func sign(_ body: [UInt8]) -> String {
        "sha256=" + HMAC<SHA256>.authenticationCode(for: body, using: key).map { String(format: "%02x", $0) }.joined()
    }

    /// True when `header` is the body's signature (compared in constant time).
    public func verify(_ body: [UInt8], header: String?) -> Bool {
        guard let header, header.hasPrefix("sha256="), let mac = Self.hexBytes(String(header.dropFirst(7))) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: key)
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
