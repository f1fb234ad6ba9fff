import Foundation

/// OpenPGP signatures, checked by `gpgv` (GnuPG's verify-only tool) against a binary keyring: teal has no
/// OpenPGP code of its own. gpgv trusts every key in the keyring, so a good signature is accepted only when the
/// signing key's full fingerprint (or its primary key's) is in `trustedFingerprints`.
public struct OpenPGPVerifier: Sendable {
    public static let armorBegin = "-----BEGIN PGP SIGNATURE-----"

    /// A binary keyring (`gpg --export KEY > FILE`, or `gpg --dearmor` of an armored export).
    public var keyring: String
    /// Full fingerprints, 40 (v4) or 64 (v5) hex digits; spaces and case do not matter.
    public var trustedFingerprints: Set<String>
    public var gpgv: String

    public init(keyring: String, trustedFingerprints: [String], gpgv: String = "gpgv") {
        self.keyring = keyring
        self.trustedFingerprints = Set(trustedFingerprints.map(Self.normalized))
        self.gpgv = gpgv
    }

    static func normalized(_ fingerprint: String) -> String {
        fingerprint.uppercased().filter { !$0.isWhitespace }.replacingOccurrences(of: "0X", with: "")
    }

    /// Verifies `signature` (armored) over `payload`; returns who signed, or throws why not.
    public func verify(signature: String, payload: [UInt8]) throws -> String {
        guard FileManager.default.isReadableFile(atPath: keyring) else {
            throw SignatureError.unsupported("cannot read the OpenPGP keyring \(keyring)")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("teal-gpgv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: folder) }
        let signatureFile = folder.appendingPathComponent("commit.sig"), payloadFile = folder.appendingPathComponent("commit")
        try Data(signature.utf8).write(to: signatureFile)
        try Data(payload).write(to: payloadFile)
        let keyring = URL(fileURLWithPath: self.keyring, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [gpgv, "--homedir", folder.path, "--keyring", keyring, "--status-fd", "1", signatureFile.path, payloadFile.path]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw SignatureError.unsupported("cannot run \(gpgv) to check an OpenPGP signature (Debian: apt-get install gpgv): \(error)")
        }
        let status = out.fileHandleForReading.readDataToEndOfFile()
        let diagnostics = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        if process.terminationReason == .exit && process.terminationStatus == 127 {
            throw SignatureError.unsupported("cannot run \(gpgv) to check an OpenPGP signature (Debian: apt-get install gpgv)")
        }
        let result = GPGVStatus(String(decoding: status, as: UTF8.self))
        return try result.signer(exitStatus: process.terminationStatus, trusted: trustedFingerprints, keyring: self.keyring,
                                 diagnostics: String(decoding: diagnostics, as: UTF8.self))
    }
}

/// What `gpgv --status-fd` reported (GnuPG's doc/DETAILS): `[GNUPG:] KEYWORD args...` lines.
public struct GPGVStatus: Sendable {
    public var lines: [(keyword: String, arguments: [String])]

    public init(_ text: String) {
        lines = text.split(whereSeparator: \.isNewline).compactMap { line in
            guard line.hasPrefix("[GNUPG:] ") else { return nil }
            let fields = line.dropFirst("[GNUPG:] ".count).split(separator: " ").map(String.init)
            guard let keyword = fields.first else { return nil }
            return (keyword, Array(fields.dropFirst()))
        }
    }

    func first(_ keyword: String) -> [String]? { lines.first { $0.keyword == keyword }?.arguments }

    /// The signer when the signature is good, by a key that has not expired or been revoked, and whose fingerprint
    /// (or its primary key's) is trusted; otherwise throws why not.
    public func signer(exitStatus: Int32, trusted: Set<String>, keyring: String, diagnostics: String = "") throws -> String {
        if let bad = first("BADSIG") {
            throw SignatureError.badSignature("the OpenPGP signature by key \(bad.first ?? "?") does not match the signed content "
                + "(the commit was changed after it was signed)")
        }
        if let missing = first("NO_PUBKEY") ?? first("ERRSIG") {
            throw SignatureError.badSignature("the OpenPGP signature is by key \(missing.first ?? "?"), which is not in the keyring \(keyring)")
        }
        for (keyword, why) in [("EXPKEYSIG", "has expired"), ("REVKEYSIG", "was revoked"), ("EXPSIG", "signature has expired")] {
            if let args = first(keyword) {
                throw SignatureError.badSignature("the OpenPGP key \(args.first ?? "?") that signed it \(why)")
            }
        }
        guard exitStatus == 0, first("GOODSIG") != nil, let valid = first("VALIDSIG"), let fingerprint = valid.first else {
            let said = diagnostics.split(whereSeparator: \.isNewline).first.map { ": \($0)" } ?? ""
            throw SignatureError.badSignature("gpgv did not report a good OpenPGP signature (exit status \(exitStatus))\(said)")
        }
        // VALIDSIG <fpr> <date> <timestamp> <expire> <version> <reserved> <pk-algo> <hash-algo> <class> <primary-fpr>
        let primary = valid.count >= 10 ? valid[9] : fingerprint
        let name = first("GOODSIG").map { $0.dropFirst().joined(separator: " ") } ?? ""
        guard trusted.contains(OpenPGPVerifier.normalized(fingerprint)) || trusted.contains(OpenPGPVerifier.normalized(primary)) else {
            throw SignatureError.badSignature("the OpenPGP key \(primary) (\(name)) has a good signature but is not a trusted fingerprint "
                + "(--trusted-fingerprint)")
        }
        return "OpenPGP key \(primary)\(name.isEmpty ? "" : " (\(name))")"
    }
}
