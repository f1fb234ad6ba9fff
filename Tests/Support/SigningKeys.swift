import Foundation

/// An SSH key made by `ssh-keygen`, for signing commits as a user would.
public struct SSHSigningKey {
    /// The private key file; `path + ".pub"` is the public key.
    public let path: String
    /// `type base64` of the public key.
    public let publicKey: String

    /// `type` is ssh-keygen's -t (ed25519, ecdsa), `bits` its -b.
    public init(type: String, bits: Int? = nil, in folder: String, name: String) throws {
        path = folder + "/" + name
        try runTool(["ssh-keygen", "-q", "-t", type] + (bits.map { ["-b", String($0)] } ?? []) + ["-N", "", "-C", name, "-f", path])
        let line = try String(contentsOfFile: path + ".pub", encoding: .utf8).split(separator: " ")
        publicKey = line.prefix(2).joined(separator: " ")
    }

    /// An allowed_signers line for this key.
    public func allowedSigner(_ principal: String, options: String? = nil) -> String {
        ([principal] + (options.map { [$0] } ?? []) + [publicKey]).joined(separator: " ")
    }
}

/// A GnuPG home of the test's own with one signing key made by `gpg --quick-gen-key`.
public struct GPGHome {
    public let home: String
    public let fingerprint: String

    /// Whether gpg is installed.
    public static var available: Bool { (try? runTool(["gpg", "--version"])) != nil }

    public init(name: String = "Test Signer <signer@example.com>") throws {
        home = NSTemporaryDirectory() + "teal-gpg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try runTool(["gpg", "--homedir", home, "--batch", "--passphrase", "", "--quick-gen-key", name, "ed25519", "sign", "never"])
        let colons = try runTool(["gpg", "--homedir", home, "--with-colons", "--list-keys"])
        guard let fpr = colons.split(separator: "\n").first(where: { $0.hasPrefix("fpr:") })?.split(separator: ":", omittingEmptySubsequences: false),
              fpr.count > 9 else { throw NSError(domain: "gpg", code: 1, userInfo: [NSLocalizedDescriptionKey: "no fingerprint in \(colons)"]) }
        fingerprint = String(fpr[9])
    }

    /// The public key as a binary keyring, the way README says to make one: an armored export, dearmored.
    public func keyring(at path: String) throws {
        let armored = path + ".asc"
        try runTool(["gpg", "--homedir", home, "--batch", "--yes", "--armor", "--output", armored, "--export", fingerprint])
        try runTool(["gpg", "--batch", "--yes", "--output", path, "--dearmor", armored])
    }

    public func cleanup() {
        _ = try? runTool(["env", "GNUPGHOME=\(home)", "gpgconf", "--kill", "gpg-agent"])
        try? FileManager.default.removeItem(atPath: home)
    }
}

extension ScratchRepo {
    /// Stages everything and commits it signed with an SSH key through the git CLI; returns the commit id.
    @discardableResult
    public func commitSigned(_ message: String, sshKey: SSHSigningKey, allowEmpty: Bool = false) throws -> String {
        try git("add", "-A")
        try runTool(["git", "-C", path, "-c", "gpg.format=ssh", "-c", "user.signingkey=\(sshKey.path)", "commit", "-q", "-S"]
            + (allowEmpty ? ["--allow-empty"] : []) + ["-m", message])
        return try git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stages everything and commits it signed with the OpenPGP key of `gpg`; returns the commit id.
    @discardableResult
    public func commitSigned(_ message: String, gpg: GPGHome, allowEmpty: Bool = false) throws -> String {
        try git("add", "-A")
        try runTool(["env", "GNUPGHOME=\(gpg.home)", "git", "-C", path, "-c", "gpg.format=openpgp", "-c", "user.signingkey=\(gpg.fingerprint)",
                     "commit", "-q", "-S"] + (allowEmpty ? ["--allow-empty"] : []) + ["-m", message])
        return try git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `git verify-commit` with `allowedSigners` (and a GnuPG home for OpenPGP): whether git accepts the signature.
    public func gitVerifies(_ commit: String, allowedSigners: String? = nil, gpg: GPGHome? = nil) -> Bool {
        var argv = ["env"] + (gpg.map { ["GNUPGHOME=\($0.home)"] } ?? []) + ["git", "-C", path]
        if let allowedSigners { argv += ["-c", "gpg.ssh.allowedSignersFile=\(allowedSigners)"] }
        return (try? runTool(argv + ["verify-commit", commit])) != nil
    }

    /// Rewrites `commit`'s object with `change` applied to its text (the signature kept as it was), points
    /// `branch` at the result and returns its id: a tampered commit.
    public func tamper(_ commit: String, branch: String = "main", _ change: (String) -> String) throws -> String {
        let raw = try git("cat-file", "commit", commit)
        let file = path + "/../tampered-\(UUID().uuidString)"
        try change(raw).write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let id = try git("hash-object", "-t", "commit", "-w", file).trimmingCharacters(in: .whitespacesAndNewlines)
        try git("update-ref", "refs/heads/\(branch)", id)
        return id
    }
}
