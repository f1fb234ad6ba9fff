import Foundation

/// Which keys may sign the commits teal applies: SSH keys listed in an allowed_signers file, OpenPGP keys in a
/// keyring with trusted fingerprints, or both.
public struct SignaturePolicy: Sendable {
    public var allowedSignersFile: String?
    public var gpgKeyring: String?
    public var trustedFingerprints: [String]
    /// The gpgv executable (found on PATH).
    public var gpgv: String

    public init(allowedSignersFile: String? = nil, gpgKeyring: String? = nil, trustedFingerprints: [String] = [], gpgv: String = "gpgv") {
        self.allowedSignersFile = allowedSignersFile
        self.gpgKeyring = gpgKeyring
        self.trustedFingerprints = trustedFingerprints
        self.gpgv = gpgv
    }
}

/// A commit's signature as git stores it (the `gpgsig` header) and what it signs (the commit object without that
/// header), checked against a policy. The allowed_signers file is read again on each check, so a key can be added
/// or removed without a restart.
public struct CommitSignatureVerifier: Sendable {
    public static let namespace = "git"
    public var policy: SignaturePolicy

    public init(policy: SignaturePolicy) { self.policy = policy }

    /// Who signed, when the signature is good and the key trusted at both `commitTime` and `now`; otherwise
    /// throws why not (`nil` signature: unsigned).
    public func verify(signature: String?, payload: [UInt8], commitTime: Date, now: Date = Date()) throws -> String {
        guard let signature else { throw SignatureError.badSignature("it is not signed") }
        if signature.contains(SSHSignature.armorBegin) {
            guard let file = policy.allowedSignersFile else {
                throw SignatureError.badSignature("it has an SSH signature, and no allowed signers file is configured (--allowed-signers)")
            }
            let sshsig = try SSHSignature(armored: signature)
            return try verifySSH(sshsig, payload: payload, allowed: try AllowedSigners(contentsOf: file), commitTime: commitTime, now: now)
        }
        if signature.contains(OpenPGPVerifier.armorBegin) {
            guard let keyring = policy.gpgKeyring else {
                throw SignatureError.badSignature("it has an OpenPGP signature, and no keyring is configured (--gpg-keyring)")
            }
            return try OpenPGPVerifier(keyring: keyring, trustedFingerprints: policy.trustedFingerprints, gpgv: policy.gpgv)
                .verify(signature: signature, payload: payload)
        }
        throw SignatureError.unsupported("its signature is neither SSH nor OpenPGP (X.509 signatures are not supported)")
    }

    /// The pure part: the signature holds over `payload` in namespace `git`, and the key is allowed then and now.
    public func verifySSH(_ signature: SSHSignature, payload: [UInt8], allowed: AllowedSigners, commitTime: Date, now: Date) throws -> String {
        try signature.verify(message: payload, namespace: Self.namespace)
        let entry = try allowed.authorize(signature.publicKey, namespace: Self.namespace,
                                          at: [("the commit time", commitTime), ("now", now)])
        return "\(entry.principals) (\(signature.publicKey.displayType) key \(signature.publicKey.fingerprint))"
    }
}
