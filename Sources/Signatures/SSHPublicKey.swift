import Crypto
import Foundation

/// An SSH public key teal can verify signatures with: ed25519, or ECDSA on P-256 or P-384.
public struct SSHPublicKey: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case ed25519 = "ssh-ed25519"
        case ecdsaP256 = "ecdsa-sha2-nistp256"
        case ecdsaP384 = "ecdsa-sha2-nistp384"
    }

    public var kind: Kind
    /// The wire blob, as in `authorized_keys` after base64 decoding.
    public var blob: [UInt8]
    /// ed25519: the 32-byte key; ECDSA: the uncompressed point.
    var key: [UInt8]

    /// Parses a wire blob (`string type || ...`).
    public init(blob: [UInt8]) throws {
        var reader = SSHWireReader(blob)
        let type = try reader.text()
        guard let kind = Kind(rawValue: type) else { throw Self.unsupported(type) }
        switch kind {
        case .ed25519:
            key = try reader.string()
            guard key.count == 32 else { throw SignatureError.malformed("an ed25519 key of \(key.count) bytes") }
        case .ecdsaP256, .ecdsaP384:
            let curve = try reader.text()
            guard curve == (kind == .ecdsaP256 ? "nistp256" : "nistp384") else {
                throw SignatureError.malformed("key type \(type) names curve \(curve)")
            }
            key = try reader.string()
            do {
                if kind == .ecdsaP256 { _ = try P256.Signing.PublicKey(x963Representation: key) }
                else { _ = try P384.Signing.PublicKey(x963Representation: key) }
            } catch {
                throw SignatureError.malformed("the \(curve) point is not on the curve")
            }
        }
        guard reader.isAtEnd else { throw SignatureError.malformed("trailing bytes after the \(type) key") }
        self.kind = kind
        self.blob = blob
    }

    /// Parses `keytype base64` as in authorized_keys and allowed_signers.
    public init(type: String, base64: String) throws {
        guard let data = Data(base64Encoded: base64) else { throw SignatureError.malformed("the \(type) key is not base64") }
        try self.init(blob: Array(data))
        guard kind.rawValue == type else { throw SignatureError.malformed("the key says \(kind.rawValue), the line says \(type)") }
    }

    static func unsupported(_ type: String) -> SignatureError {
        if type.hasPrefix("ssh-rsa") || type.hasPrefix("rsa-") {
            return .unsupported("RSA keys (\(type)) are not supported for commit signatures; sign with an ed25519 or ECDSA key")
        }
        if type.hasPrefix("sk-") { return .unsupported("security-key signatures (\(type)) are not supported; sign with an ed25519 or ECDSA key") }
        if type.contains("-cert-v01@openssh.com") { return .unsupported("certificates (\(type)) are not supported; list the signing key itself") }
        return .unsupported("key type \(type) is not supported; sign with an ed25519 or ECDSA (nistp256, nistp384) key")
    }

    /// `SHA256:<base64 without padding>` of the blob, as `ssh-keygen -l` prints it.
    public var fingerprint: String {
        "SHA256:" + Data(SHA256.hash(data: blob)).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    /// `ED25519`, `ECDSA`, as ssh-keygen names them.
    public var displayType: String { kind == .ed25519 ? "ED25519" : "ECDSA" }

    /// Whether `signature` (the inner blob of an SSH signature: its format and bytes) signs `data` with this key.
    func isValid(signature: [UInt8], format: String, for data: [UInt8]) -> Bool {
        guard format == kind.rawValue else { return false }
        switch kind {
        case .ed25519:
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: key) else { return false }
            return key.isValidSignature(signature, for: data)
        case .ecdsaP256:
            guard let key = try? P256.Signing.PublicKey(x963Representation: key), let raw = Self.rawECDSA(signature, width: 32),
                  let signature = try? P256.Signing.ECDSASignature(rawRepresentation: raw) else { return false }
            return key.isValidSignature(signature, for: data)
        case .ecdsaP384:
            guard let key = try? P384.Signing.PublicKey(x963Representation: key), let raw = Self.rawECDSA(signature, width: 48),
                  let signature = try? P384.Signing.ECDSASignature(rawRepresentation: raw) else { return false }
            return key.isValidSignature(signature, for: data)
        }
    }

    /// An SSH ECDSA signature (`mpint r || mpint s`) as `r || s`, each `width` bytes.
    static func rawECDSA(_ bytes: [UInt8], width: Int) -> [UInt8]? {
        var reader = SSHWireReader(bytes)
        guard let r = try? reader.string(), let s = try? reader.string(), reader.isAtEnd else { return nil }
        func fixed(_ mpint: [UInt8]) -> [UInt8]? {
            let trimmed = mpint.drop { $0 == 0 }
            guard trimmed.count <= width else { return nil }
            return Array(repeating: 0, count: width - trimmed.count) + trimmed
        }
        guard let r = fixed(r), let s = fixed(s) else { return nil }
        return r + s
    }
}
