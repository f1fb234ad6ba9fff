import Crypto
import Foundation
@testable import Signatures
import Testing

/// SSHSIG and allowed_signers parsed and verified without any I/O: signatures made here with swift-crypto keys,
/// in the wire format OpenSSH's PROTOCOL.sshsig describes.
struct SSHSignatureTests {
    enum TestKey: @unchecked Sendable {
        case ed25519(Curve25519.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)

        var type: String {
            switch self {
            case .ed25519: "ssh-ed25519"
            case .p256: "ecdsa-sha2-nistp256"
            case .p384: "ecdsa-sha2-nistp384"
            }
        }

        var publicBlob: [UInt8] {
            var w = SSHWireWriter()
            w.string(type)
            switch self {
            case .ed25519(let key): w.string(Array(key.publicKey.rawRepresentation))
            case .p256(let key):
                w.string("nistp256")
                w.string(Array(key.publicKey.x963Representation))
            case .p384(let key):
                w.string("nistp384")
                w.string(Array(key.publicKey.x963Representation))
            }
            return w.bytes
        }

        var allowedSignersKey: String { "\(type) \(Data(publicBlob).base64EncodedString())" }

        func sign(_ data: [UInt8]) throws -> [UInt8] {
            func mpint(_ bytes: some Collection<UInt8>) -> [UInt8] {
                let trimmed = Array(bytes.drop { $0 == 0 })
                return trimmed.first.map { $0 & 0x80 != 0 } == true ? [0] + trimmed : trimmed
            }
            func ecdsa(_ raw: Data, width: Int) -> [UInt8] {
                var w = SSHWireWriter()
                w.string(mpint(raw.prefix(width)))
                w.string(mpint(raw.suffix(width)))
                return w.bytes
            }
            switch self {
            case .ed25519(let key): return Array(try key.signature(for: data))
            case .p256(let key): return ecdsa(try key.signature(for: data).rawRepresentation, width: 32)
            case .p384(let key): return ecdsa(try key.signature(for: data).rawRepresentation, width: 48)
            }
        }
    }

    /// An armored SSHSIG over `message`, as `ssh-keygen -Y sign -n namespace` makes it.
    static func armored(_ key: TestKey, message: [UInt8], namespace: String = "git", hash: String = "sha512",
                        signedMessage: [UInt8]? = nil) throws -> String {
        let digest: [UInt8] = hash == "sha256" ? Array(SHA256.hash(data: signedMessage ?? message))
            : Array(SHA512.hash(data: signedMessage ?? message))
        var signed = SSHWireWriter()
        signed.raw(Array("SSHSIG".utf8))
        signed.string(namespace)
        signed.string("")
        signed.string(hash)
        signed.string(digest)
        var inner = SSHWireWriter()
        inner.string(key.type)
        inner.string(try key.sign(signed.bytes))
        var blob = SSHWireWriter()
        blob.raw(Array("SSHSIG".utf8))
        blob.uint32(1)
        blob.string(key.publicBlob)
        blob.string(namespace)
        blob.string("")
        blob.string(hash)
        blob.string(inner.bytes)
        let base64 = Data(blob.bytes).base64EncodedString()
        let lines = stride(from: 0, to: base64.count, by: 70).map { String(base64.dropFirst($0).prefix(70)) }
        return ([SSHSignature.armorBegin] + lines + [SSHSignature.armorEnd]).joined(separator: "\n") + "\n"
    }

    static let message = Array("tree 4b825dc642cb6eb9a060e54bf8d69288fbc4904\nauthor A <a@example.com> 1764590000 +0000\n\nDeploy\n".utf8)
    static let keys: [TestKey] = [.ed25519(.init()), .p256(.init()), .p384(.init())]

    @Test(arguments: [0, 1, 2], ["sha256", "sha512"])
    func aGoodSignatureVerifiesAndAChangedMessageDoesNot(key index: Int, hash: String) throws {
        let key = Self.keys[index]
        let signature = try SSHSignature(armored: try Self.armored(key, message: Self.message, hash: hash))
        #expect(signature.publicKey.kind.rawValue == key.type)
        #expect(signature.hashAlgorithm.rawValue == hash)
        try signature.verify(message: Self.message, namespace: "git")
        var changed = Self.message
        changed[changed.count - 2] ^= 1
        #expect(throws: SignatureError.self) { try signature.verify(message: changed, namespace: "git") }
    }

    @Test func theNamespaceMustBeGit() throws {
        let signature = try SSHSignature(armored: try Self.armored(Self.keys[0], message: Self.message, namespace: "file"))
        #expect { try signature.verify(message: Self.message, namespace: "git") } throws: {
            "\($0)".contains("namespace 'file', not 'git'")
        }
    }

    @Test func aSignatureOverOtherContentDoesNotVerify() throws {
        let signature = try SSHSignature(armored: try Self.armored(Self.keys[1], message: Self.message, signedMessage: Array("other".utf8)))
        #expect { try signature.verify(message: Self.message, namespace: "git") } throws: {
            "\($0)".contains("does not match the signed content")
        }
    }

    @Test func malformedAndUnsupportedSignaturesAreErrors() throws {
        let good = try Self.armored(Self.keys[0], message: Self.message)
        #expect(throws: SignatureError.self) { try SSHSignature(armored: "-----BEGIN SSH SIGNATURE-----\n!!!\n-----END SSH SIGNATURE-----\n") }
        #expect(throws: SignatureError.self) { try SSHSignature(armored: "no armor") }
        let blob = Array(Data(base64Encoded: good.split(separator: "\n").dropFirst().dropLast().joined())!)
        #expect(throws: SignatureError.self) { try SSHSignature(blob: Array(blob.dropLast(3))) }
        var badMagic = blob
        badMagic[0] = UInt8(ascii: "X")
        #expect(throws: SignatureError.self) { try SSHSignature(blob: badMagic) }
        var version2 = blob
        version2[9] = 2
        #expect { try SSHSignature(blob: version2) } throws: { "\($0)".contains("version 2") }
        var rsa = SSHWireWriter()
        rsa.string("ssh-rsa")
        rsa.string([1, 0, 1])
        rsa.string([0xc3, 0x11])
        #expect { try SSHPublicKey(blob: rsa.bytes) } throws: { "\($0)".contains("RSA keys") && "\($0)".contains("ed25519") }
    }

    // MARK: - allowed_signers

    @Test func allowedSignersLinesAreParsedAsSSHKeygenDoes() throws {
        let a = Self.keys[0], b = Self.keys[1], c = Self.keys[2]
        let text = """
            # trusted signers
            alice@example.com \(a.allowedSignersKey) alice's laptop

            "bob@example.com,ops team" namespaces="git,file",valid-after="20260101",valid-before="20261231235959Z" \(b.allowedSignersKey)
            carol@example.com namespaces="file" \(c.allowedSignersKey)
            rsa@example.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDC
            """
        let allowed = try AllowedSigners(text: text, file: "/etc/teal/allowed_signers", timeZone: TimeZone(identifier: "UTC")!)
        #expect(allowed.entries.count == 3, "the RSA line is left out")
        #expect(allowed.entries[0].principals == "alice@example.com" && allowed.entries[0].line == 2)
        #expect(allowed.entries[1].principals == "bob@example.com,ops team")
        #expect(allowed.entries[1].namespaces == ["git", "file"])
        #expect(allowed.entries[1].validAfter == Date(timeIntervalSince1970: 1_767_225_600))
        #expect(allowed.entries[1].validBefore == Date(timeIntervalSince1970: 1_798_761_599))

        let now = Date(timeIntervalSince1970: 1_780_000_000)  // 2026-05-28
        let alice = try SSHPublicKey(blob: a.publicBlob)
        #expect(try allowed.authorize(alice, namespace: "git", at: [("now", now)]).line == 2)
        let bob = try SSHPublicKey(blob: b.publicBlob)
        #expect(try allowed.authorize(bob, namespace: "git", at: [("the commit time", now), ("now", now)]).line == 4)
        let later = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15
        #expect { try allowed.authorize(bob, namespace: "git", at: [("now", later)]) } throws: {
            "\($0)".contains("/etc/teal/allowed_signers:4") && "\($0)".contains("expired")
        }
        let earlier = Date(timeIntervalSince1970: 1_760_000_000)  // 2025-10
        #expect { try allowed.authorize(bob, namespace: "git", at: [("the commit time", earlier)]) } throws: {
            "\($0)".contains("valid only after") && "\($0)".contains("the commit time")
        }
        let carol = try SSHPublicKey(blob: c.publicBlob)
        #expect { try allowed.authorize(carol, namespace: "git", at: [("now", now)]) } throws: {
            "\($0)".contains("only for namespaces \"file\"")
        }
        let stranger = try SSHPublicKey(blob: TestKey.ed25519(.init()).publicBlob)
        #expect { try allowed.authorize(stranger, namespace: "git", at: [("now", now)]) } throws: {
            "\($0)".contains(stranger.fingerprint) && "\($0)".contains("is not in the allowed signers file /etc/teal/allowed_signers")
        }
    }

    @Test func badAllowedSignersLinesNameTheFileAndLine() throws {
        let key = Self.keys[0].allowedSignersKey
        func error(_ text: String) -> String {
            do {
                _ = try AllowedSigners(text: text, file: "signers")
                return ""
            } catch { return "\(error)" }
        }
        #expect(error("# ok\nops@example.com cert-authority \(key)").contains("signers:2: cert-authority is not supported"))
        #expect(error("ops@example.com valid-before=\"2026\" \(key)").contains("signers:1: malformed signature: valid-before must be"))
        #expect(error("ops@example.com frobnicate \(key)").contains("signers:1: unknown option 'frobnicate'"))
        #expect(error("ops@example.com ssh-ed25519 AAAA!!!").contains("signers:1:"))
        #expect(error("\"ops@example.com \(key)").contains("unterminated quote"))
    }

    @Test func validityTimesAreLocalUnlessMarkedZ() {
        let utc = TimeZone(identifier: "UTC")!, plus2 = TimeZone(secondsFromGMT: 7200)!
        #expect(AllowedSigners.parseTime("20260101", timeZone: utc) == Date(timeIntervalSince1970: 1_767_225_600))
        #expect(AllowedSigners.parseTime("202601010200", timeZone: plus2) == Date(timeIntervalSince1970: 1_767_225_600))
        #expect(AllowedSigners.parseTime("20260101000000Z", timeZone: plus2) == Date(timeIntervalSince1970: 1_767_225_600))
        #expect(AllowedSigners.parseTime("2026010", timeZone: utc) == nil)
        #expect(AllowedSigners.parseTime("20261301", timeZone: utc) == nil)
        #expect(AllowedSigners.matches("git", patterns: ["g*"]))
        #expect(!AllowedSigners.matches("git", patterns: ["*", "!git"]))
        #expect(!AllowedSigners.matches("git", patterns: ["file"]))
    }

    @Test func theVerifierCombinesSignatureAndTrust() throws {
        let key = Self.keys[2]
        let allowed = try AllowedSigners(text: "ops@example.com valid-before=\"20300101Z\" \(key.allowedSignersKey)", file: "signers")
        let verifier = CommitSignatureVerifier(policy: SignaturePolicy(allowedSignersFile: "signers"))
        let signature = try SSHSignature(armored: try Self.armored(key, message: Self.message))
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        let signer = try verifier.verifySSH(signature, payload: Self.message, allowed: allowed, commitTime: now, now: now)
        #expect(signer.contains("ops@example.com") && signer.contains("ECDSA key SHA256:"))
        #expect(throws: SignatureError.self) {
            try verifier.verifySSH(signature, payload: Self.message, allowed: allowed, commitTime: now, now: Date(timeIntervalSince1970: 1_900_000_000))
        }
        #expect { try verifier.verify(signature: nil, payload: Self.message, commitTime: now) } throws: { "\($0)" == "it is not signed" }
        #expect { try verifier.verify(signature: "-----BEGIN PGP SIGNATURE-----\n", payload: [], commitTime: now) } throws: {
            "\($0)".contains("no keyring is configured")
        }
    }

    // MARK: - gpgv's status lines

    @Test func gpgvStatusLinesDecideTheOutcome() throws {
        let fpr = "0123456789ABCDEF0123456789ABCDEF01234567", sub = "89ABCDEF0123456789ABCDEF0123456789ABCDEF"
        let good = """
            [GNUPG:] NEWSIG
            [GNUPG:] KEY_CONSIDERED \(fpr) 0
            [GNUPG:] SIG_ID abc 2026-12-01 1764590000
            [GNUPG:] GOODSIG 0123456789ABCDEF Test Signer <signer@example.com>
            [GNUPG:] VALIDSIG \(sub) 2026-12-01 1764590000 0 4 0 22 10 00 \(fpr)
            """
        let signer = try GPGVStatus(good).signer(exitStatus: 0, trusted: [fpr], keyring: "k.gpg")
        #expect(signer.contains(fpr) && signer.contains("Test Signer"))
        #expect(try GPGVStatus(good).signer(exitStatus: 0, trusted: [sub], keyring: "k.gpg").contains(fpr))
        #expect { try GPGVStatus(good).signer(exitStatus: 0, trusted: ["FFFF" + fpr.dropFirst(4)], keyring: "k.gpg") } throws: {
            "\($0)".contains("not a trusted fingerprint")
        }
        #expect { try GPGVStatus(good).signer(exitStatus: 1, trusted: [fpr], keyring: "k.gpg") } throws: { "\($0)".contains("exit status 1") }
        #expect { try GPGVStatus("[GNUPG:] BADSIG 0123456789ABCDEF Test").signer(exitStatus: 1, trusted: [fpr], keyring: "k.gpg") } throws: {
            "\($0)".contains("does not match the signed content")
        }
        #expect { try GPGVStatus("[GNUPG:] ERRSIG 0123456789ABCDEF 22 10 00 1764590000 9 -\n[GNUPG:] NO_PUBKEY 0123456789ABCDEF")
            .signer(exitStatus: 2, trusted: [fpr], keyring: "k.gpg") } throws: { "\($0)".contains("not in the keyring k.gpg") }
        #expect { try GPGVStatus(good + "\n[GNUPG:] EXPKEYSIG 0123456789ABCDEF Test").signer(exitStatus: 0, trusted: [fpr], keyring: "k.gpg") }
            throws: { "\($0)".contains("has expired") }
        #expect(OpenPGPVerifier.normalized("0123 4567 89ab cdef 0123  4567 89AB CDEF 0123 4567") == fpr)
    }
}
