import Crypto
import Foundation

/// An OpenSSH signature (`ssh-keygen -Y sign`, what `git commit -S` makes with `gpg.format=ssh`), in the format
/// of OpenSSH's PROTOCOL.sshsig:
///
///     byte[6] "SSHSIG"   uint32 version (1)   string publickey   string namespace
///     string reserved    string hash_algorithm   string signature
///
/// The signed data is `"SSHSIG" || string(namespace) || string(reserved) || string(hash_algorithm) ||
/// string(H(message))`, with H the named hash (sha256 or sha512).
public struct SSHSignature: Sendable, Equatable {
    public static let armorBegin = "-----BEGIN SSH SIGNATURE-----"
    public static let armorEnd = "-----END SSH SIGNATURE-----"
    static let magic = Array("SSHSIG".utf8)

    public enum HashAlgorithm: String, Sendable { case sha256, sha512 }

    public var publicKey: SSHPublicKey
    public var namespace: String
    public var reserved: [UInt8]
    public var hashAlgorithm: HashAlgorithm
    /// The signature blob: `string format || string bytes`.
    public var signatureFormat: String
    public var signatureBytes: [UInt8]

    /// Parses the armored form (`-----BEGIN SSH SIGNATURE-----` ... `-----END SSH SIGNATURE-----`).
    public init(armored text: String) throws {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(of: Self.armorBegin), let end = lines.firstIndex(of: Self.armorEnd), begin < end else {
            throw SignatureError.malformed("no \(Self.armorBegin) ... \(Self.armorEnd) block")
        }
        guard let blob = Data(base64Encoded: lines[(begin + 1)..<end].joined()) else {
            throw SignatureError.malformed("the armored block is not base64")
        }
        try self.init(blob: Array(blob))
    }

    /// Parses the binary form.
    public init(blob: [UInt8]) throws {
        var reader = SSHWireReader(blob)
        guard try reader.raw(6) == Self.magic else { throw SignatureError.malformed("it does not start with SSHSIG") }
        let version = try reader.uint32()
        guard version == 1 else { throw SignatureError.unsupported("SSHSIG version \(version) is not supported (only 1)") }
        publicKey = try SSHPublicKey(blob: try reader.string())
        namespace = try reader.text()
        reserved = try reader.string()
        let hash = try reader.text()
        guard let algorithm = HashAlgorithm(rawValue: hash) else {
            throw SignatureError.unsupported("the signature's hash algorithm '\(hash)' is not sha256 or sha512")
        }
        hashAlgorithm = algorithm
        var signature = SSHWireReader(try reader.string())
        signatureFormat = try signature.text()
        signatureBytes = try signature.string()
        guard signature.isAtEnd, reader.isAtEnd else { throw SignatureError.malformed("trailing bytes after the signature") }
    }

    /// What the key signed for `message`.
    public func signedData(for message: some DataProtocol) -> [UInt8] {
        var writer = SSHWireWriter()
        writer.raw(Self.magic)
        writer.string(namespace)
        writer.string(reserved)
        writer.string(hashAlgorithm.rawValue)
        switch hashAlgorithm {
        case .sha256: writer.string(Array(SHA256.hash(data: message)))
        case .sha512: writer.string(Array(SHA512.hash(data: message)))
        }
        return writer.bytes
    }

    /// Checks the signature over `message` in `namespace`; throws when it does not hold. Says nothing about
    /// whether the key is trusted: that is `AllowedSigners`' part.
    public func verify(message: some DataProtocol, namespace expected: String) throws {
        guard namespace == expected else {
            throw SignatureError.badSignature("the signature is for namespace '\(namespace)', not '\(expected)'")
        }
        guard publicKey.isValid(signature: signatureBytes, format: signatureFormat, for: signedData(for: message)) else {
            throw SignatureError.badSignature("the \(publicKey.displayType) signature by \(publicKey.fingerprint) does not match the signed "
                + "content (the commit was changed after it was signed)")
        }
    }
}
