import Drivers
import Foundation
import Git
import Reconcile
import Signatures
import Testing
import TestSupport

/// Commits signed by the git CLI with keys made by ssh-keygen and gpg, verified by teal and cross-checked with
/// `git verify-commit`.
@Suite(.serialized) struct SignedCommitTests {
    struct Fixture {
        let repo: ScratchRepo
        let folder: String
        let allowedSigners: String

        init() throws {
            repo = try ScratchRepo()
            folder = repo.path + "-keys"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            allowedSigners = folder + "/allowed_signers"
        }

        func key(_ type: String, bits: Int? = nil, _ name: String) throws -> SSHSigningKey {
            try SSHSigningKey(type: type, bits: bits, in: folder, name: name)
        }

        func allow(_ lines: String...) throws { try (lines.joined(separator: "\n") + "\n").write(toFile: allowedSigners, atomically: true, encoding: .utf8) }

        var verifier: RepositoryCommitVerifier { RepositoryCommitVerifier(path: repo.path, policy: SignaturePolicy(allowedSignersFile: allowedSigners)) }

        /// What teal says of `commit`: nil when it verifies, else the refusal.
        func refusal(_ commit: String) async throws -> String? {
            do {
                _ = try await verifier.verify(commit)
                return nil
            } catch let refusal as SignatureRefusal {
                return refusal.description
            }
        }

        func cleanup() {
            repo.cleanup()
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    @Test(arguments: [("ed25519", nil), ("ecdsa", 256), ("ecdsa", 384)] as [(String, Int?)])
    func aCommitSignedByAnAllowedKeyVerifiesAsGitSays(type: String, bits: Int?) async throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let key = try f.key(type, bits: bits, "deployer")
        try f.allow(key.allowedSigner("deployer@example.com", options: "namespaces=\"git\""))
        try f.repo.write("apps/shop/traffic.yaml", "live: blue\n")
        let commit = try f.repo.commitSigned("Deploy", sshKey: key)
        #expect(f.repo.gitVerifies(commit, allowedSigners: f.allowedSigners), "git verify-commit accepts it")
        #expect(try await f.refusal(commit) == nil)
        let signer = try await f.verifier.verify(commit)
        #expect(signer.contains("deployer@example.com") && signer.contains(type == "ed25519" ? "ED25519" : "ECDSA"), "\(signer)")
    }

    @Test func unsignedTamperedAndUntrustedCommitsAreRefusedAsGitRefusesThem() async throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let trusted = try f.key("ed25519", "trusted"), stranger = try f.key("ecdsa", "stranger")
        try f.allow(trusted.allowedSigner("trusted@example.com"))

        try f.repo.write("apps/shop/traffic.yaml", "live: blue\n")
        let unsigned = try f.repo.commit("Unsigned")
        #expect(!f.repo.gitVerifies(unsigned, allowedSigners: f.allowedSigners))
        #expect(try await f.refusal(unsigned) == "commit \(unsigned): it is not signed")

        try f.repo.write("apps/shop/traffic.yaml", "live: green\n")
        let signed = try f.repo.commitSigned("Switch to green", sshKey: trusted)
        #expect(f.repo.gitVerifies(signed, allowedSigners: f.allowedSigners))
        #expect(try await f.refusal(signed) == nil)

        // The same object with its message changed and the signature kept.
        let tampered = try f.repo.tamper(signed) { $0.replacingOccurrences(of: "Switch to green", with: "Switch to blue") }
        #expect(tampered != signed)
        #expect(!f.repo.gitVerifies(tampered, allowedSigners: f.allowedSigners), "git verify-commit rejects the tampered commit")
        let tamperedRefusal = try await f.refusal(tampered)
        #expect(tamperedRefusal?.contains("commit \(tampered):") == true && tamperedRefusal?.contains("does not match the signed content") == true,
                "\(tamperedRefusal ?? "verified")")
        // The tree swapped for another one: the same.
        let otherTree = try f.repo.git("rev-parse", "\(unsigned)^{tree}").trimmingCharacters(in: .whitespacesAndNewlines)
        let swapped = try f.repo.tamper(signed) { text in
            text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix("tree ") ? "tree \(otherTree)" : String($0) }
                .joined(separator: "\n")
        }
        #expect(!f.repo.gitVerifies(swapped, allowedSigners: f.allowedSigners))
        #expect(try await f.refusal(swapped)?.contains("does not match the signed content") == true)

        try f.repo.git("reset", "-q", "--hard", signed)
        let byStranger = try f.repo.commitSigned("Signed by a stranger", sshKey: stranger, allowEmpty: true)
        #expect(!f.repo.gitVerifies(byStranger, allowedSigners: f.allowedSigners), "git verify-commit rejects an unknown key")
        let strangerRefusal = try await f.refusal(byStranger)
        let fingerprint = try runTool(["ssh-keygen", "-l", "-f", stranger.path + ".pub"]).split(separator: " ")[1]
        #expect(strangerRefusal?.contains("\(fingerprint) is not in the allowed signers file \(f.allowedSigners)") == true,
                "\(strangerRefusal ?? "verified")")
    }

    @Test func anExpiredOrWrongNamespaceKeyIsRefusedAsGitRefusesIt() async throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let key = try f.key("ed25519", "expired")
        try f.repo.write("README", "x\n")
        let commit = try f.repo.commitSigned("Signed", sshKey: key)
        try f.allow(key.allowedSigner("ops@example.com", options: "valid-before=\"20200101\""))
        #expect(!f.repo.gitVerifies(commit, allowedSigners: f.allowedSigners), "git verify-commit rejects an expired key")
        let expired = try await f.refusal(commit)
        #expect(expired?.contains("\(f.allowedSigners):1") == true && expired?.contains("expired") == true, "\(expired ?? "verified")")

        try f.allow(key.allowedSigner("ops@example.com", options: "namespaces=\"file\""))
        #expect(!f.repo.gitVerifies(commit, allowedSigners: f.allowedSigners), "git verify-commit rejects another namespace")
        #expect(try await f.refusal(commit)?.contains("only for namespaces \"file\"") == true)

        try f.allow(key.allowedSigner("ops@example.com", options: "valid-after=\"20200101\",valid-before=\"20991231\""))
        #expect(f.repo.gitVerifies(commit, allowedSigners: f.allowedSigners))
        #expect(try await f.refusal(commit) == nil, "the file is read again on every check")

        try f.allow("ops@example.com cert-authority \(key.publicKey)")
        await #expect { try await f.verifier.verify(commit) } throws: {
            ($0 as? ReconcileFailure)?.description.contains("\(f.allowedSigners):1: cert-authority is not supported") == true
        }
    }

    @Test func verifyAllChecksEveryCommitSinceTheLastAppliedOne() async throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let key = try f.key("ed25519", "signer")
        try f.allow(key.allowedSigner("signer@example.com"))
        try f.repo.write("a", "1\n")
        let applied = try f.repo.commitSigned("Applied", sshKey: key)
        try f.repo.write("a", "2\n")
        let middle = try f.repo.commit("Unsigned in between")
        try f.repo.write("a", "3\n")
        let tip = try f.repo.commitSigned("Signed tip", sshKey: key)
        #expect(try await f.verifier.commits(tip: tip, since: applied, mode: .head) == [tip])
        #expect(try await f.verifier.commits(tip: tip, since: applied, mode: .all) == [tip, middle])
        #expect(try await f.refusal(middle) != nil)
    }

    @Test(.timeLimit(.minutes(2)))
    func openPGPSignaturesAreCheckedByGpgvWithTrustedFingerprints() async throws {
        guard GPGHome.available else {
            print("skipped: gpg is not installed (Debian: apt-get install gnupg), so OpenPGP signatures are not tested")
            return
        }
        let f = try Fixture()
        defer { f.cleanup() }
        let gpg = try GPGHome()
        defer { gpg.cleanup() }
        let other = try GPGHome(name: "Someone Else <else@example.com>")
        defer { other.cleanup() }
        let keyring = f.folder + "/trusted.gpg"
        try gpg.keyring(at: keyring)
        func verifier(_ fingerprints: [String]) -> RepositoryCommitVerifier {
            RepositoryCommitVerifier(path: f.repo.path, policy: SignaturePolicy(gpgKeyring: keyring, trustedFingerprints: fingerprints))
        }
        func refusal(_ commit: String, _ fingerprints: [String]) async throws -> String? {
            do {
                _ = try await verifier(fingerprints).verify(commit)
                return nil
            } catch let refusal as SignatureRefusal { return refusal.description }
        }
        try f.repo.write("a", "1\n")
        let signed = try f.repo.commitSigned("Signed with OpenPGP", gpg: gpg)
        #expect(f.repo.gitVerifies(signed, gpg: gpg), "git verify-commit accepts it")
        #expect(try await refusal(signed, [gpg.fingerprint]) == nil)
        #expect(try await verifier([gpg.fingerprint.lowercased()]).verify(signed).contains(gpg.fingerprint))
        #expect(try await refusal(signed, [other.fingerprint])?.contains("not a trusted fingerprint") == true, "a good signature by a key not trusted")

        let tampered = try f.repo.tamper(signed) { $0.replacingOccurrences(of: "Signed with OpenPGP", with: "Something else") }
        #expect(!f.repo.gitVerifies(tampered, gpg: gpg))
        #expect(try await refusal(tampered, [gpg.fingerprint])?.contains("does not match the signed content") == true)

        try f.repo.git("reset", "-q", "--hard", signed)
        let byOther = try f.repo.commitSigned("Signed by a key not in the keyring", gpg: other, allowEmpty: true)
        #expect(try await refusal(byOther, [gpg.fingerprint, other.fingerprint])?.contains("not in the keyring \(keyring)") == true)
    }
}
