import ArgumentParser
import Drivers
import Reconcile
import Foundation
import Git
import Logging
import Signatures
import State

/// `--repo`, `--branch` and, for a remote repository, its credentials and trust; shared by the commands that
/// read the desired-state repository.
struct RepoOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The desired-state repository: a local path (bare or not) or a URL (ssh://, user@host:path, "
        + "https://, http://, git://, file://), which is mirrored into the data dir. Default: $TEAL_REPO."))
    var repo: String?

    @Option(help: "The branch teal follows.")
    var branch = "main"

    @Option(help: "SSH: the private key file (ed25519 or ECDSA; RSA servers may refuse SHA-1 signatures).")
    var sshKey: String?

    @Option(help: "SSH: a file holding the private key's passphrase.")
    var sshPassphraseFile: String?

    @Flag(help: "SSH: use the keys of the running ssh-agent ($SSH_AUTH_SOCK).")
    var sshAgent = false

    @Option(help: "SSH: a known_hosts file the server's host key must be in (no trust on first use).")
    var knownHosts: String?

    @Option(help: "SSH: a pinned host key fingerprint, SHA256:... (repeat for rotation).")
    var hostKey: [String] = []

    @Option(help: "HTTP(S): the user name for Basic authentication.")
    var httpUser: String?

    @Option(help: "HTTP(S): a file holding the password.")
    var passwordFile: String?

    @Option(help: "HTTP(S): a file holding a bearer token.")
    var tokenFile: String?

    @Option(help: "HTTPS: certificate authorities (PEM) to trust.")
    var caFile: String?

    @Option(help: "HTTP(S): a proxy URL for http(s) repositories.")
    var proxy: String?

    @Flag(help: "Push each outcome's note to the remote's refs/notes/teal (fetched and added on top, never forced).")
    var pushNotes = false

    @Option(help: ArgumentHelp("A configuration file: YAML whose keys are this command's long option names (repo: URL, "
        + "push-notes: true, host-key: [SHA256:a, SHA256:b]); options on the command line win. Default: $TEAL_CONFIG."))
    var config: String?

    func validate() throws {
        if repo == nil && ProcessInfo.processInfo.environment["TEAL_REPO"].map({ !$0.isEmpty }) != true {
            throw ValidationError("Missing expected argument '--repo <repo>' (or set TEAL_REPO)")
        }
        // libgit2 1.5 sends a plain-http request in proxy form to the server itself instead of to the proxy.
        if proxy != nil, path.lowercased().hasPrefix("http://") {
            throw ValidationError("--proxy works for https:// repositories only (this libgit2 sends plain http:// requests past the proxy); use https://")
        }
    }

    /// The repository as given, or `$TEAL_REPO`.
    var path: String { repo ?? ProcessInfo.processInfo.environment["TEAL_REPO"] ?? "" }

    var isRemote: Bool { RemoteURL.isRemote(path) }

    var remote: RemoteSettings {
        var settings = RemoteSettings()
        settings.sshKeyFile = sshKey
        settings.sshPassphraseFile = sshPassphraseFile
        settings.sshAgent = sshAgent
        settings.knownHostsFile = knownHosts
        settings.hostKeyFingerprints = hostKey
        settings.httpUser = httpUser
        settings.passwordFile = passwordFile
        settings.tokenFile = tokenFile
        settings.caFile = caFile
        settings.proxy = proxy
        settings.pushNotes = pushNotes
        return settings
    }

    /// The local repository, opened to check it exists. A remote one is checked by its first fetch.
    func checkLocal() throws {
        if !isRemote { _ = try open() }
    }

    /// A local repository as it is, or the mirror of a remote one, fetched now.
    func open(dataDir: String) async throws -> Repository {
        guard isRemote else { return try open() }
        let source = RemoteMirrorSource(url: path, branch: branch, dataDir: dataDir, settings: remote)
        do {
            _ = try await source.tip()
            return try Repository(path: source.path)
        } catch let failure as ReconcileFailure {
            throw CLIError(failure.description)
        }
    }

    func open() throws -> Repository {
        guard !isRemote else { throw CLIError("\(path) is a remote repository; this command reads local repositories only") }
        do {
            return try Repository(path: path)
        } catch let error as GitError {
            throw CLIError("cannot open repository '\(path)': \(error.message)")
        }
    }
}

/// `--data-dir`: teal's state, logs and materialised app folders.
struct DataDirOption: ParsableArguments {
    @Option(help: "teal's data directory: state, logs, materialised app folders. Default: $TEAL_DATA_DIR, else .teal.")
    var dataDir: String?

    /// The data dir as an absolute path.
    var path: String {
        let given = dataDir ?? ProcessInfo.processInfo.environment["TEAL_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? ".teal"
        return URL(fileURLWithPath: given, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL.path
    }

    /// The state store of an existing data dir, for commands that only read; nothing is created.
    func existingStore() throws -> StateStore? {
        do {
            return try StateStore(existingDataDir: path)
        } catch {
            throw CLIError("cannot read the state store in \(path): \(error)")
        }
    }
}

/// The log level from `$LOG_LEVEL`, else `fallback`.
func logger(_ label: String, level fallback: Logger.Level) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? fallback
    return logger
}

/// An error the command line reports as one clear message and exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Who teal says it is in commits and notes when git config has no user.
enum TealIdentity {
    static func signature() -> Signature {
        let env = ProcessInfo.processInfo.environment
        let name = env["GIT_AUTHOR_NAME"] ?? env["GIT_COMMITTER_NAME"] ?? "teal"
        let host = ProcessInfo.processInfo.hostName
        let email = env["GIT_AUTHOR_EMAIL"] ?? env["GIT_COMMITTER_EMAIL"] ?? "teal@\(host.isEmpty ? "localhost" : host)"
        return Signature(name: name, email: email)
    }
}

/// Standard error, for diagnostics.
enum Console {
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }
}

/// `--verify` and the keys trusted to sign commits; on the commands that apply (or plan) a commit.
struct VerifyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Require a trusted signature on the branch tip (head) or on every commit since the last applied "
        + "one (all); a commit that does not verify is refused and never applied. Off by default.", valueName: "head|all"))
    var verify: VerifyMode?

    @Option(help: "SSH signatures: an allowed_signers file (git's gpg.ssh.allowedSignersFile format) listing the trusted keys.")
    var allowedSigners: String?

    @Option(help: "OpenPGP signatures: a binary keyring for gpgv (gpg --export KEY, or gpg --dearmor of an armored export).")
    var gpgKeyring: String?

    @Option(help: "OpenPGP signatures: the full fingerprint of a trusted signing key (repeat for several).")
    var trustedFingerprint: [String] = []

    func validate() throws {
        guard verify != nil else {
            if allowedSigners != nil || gpgKeyring != nil || !trustedFingerprint.isEmpty {
                throw ValidationError("--allowed-signers, --gpg-keyring and --trusted-fingerprint take effect only with --verify head|all")
            }
            return
        }
        if allowedSigners == nil && gpgKeyring == nil {
            throw ValidationError("--verify needs --allowed-signers FILE (SSH signatures) or --gpg-keyring FILE with --trusted-fingerprint (OpenPGP)")
        }
        if gpgKeyring != nil && trustedFingerprint.isEmpty {
            throw ValidationError("--gpg-keyring needs at least one --trusted-fingerprint: gpgv alone trusts every key in the keyring")
        }
        for fingerprint in trustedFingerprint {
            let hex = fingerprint.filter { !$0.isWhitespace }
            guard [40, 64].contains(hex.count), hex.allSatisfy(\.isHexDigit) else {
                throw ValidationError("--trusted-fingerprint \(fingerprint) is not a full fingerprint (40 or 64 hex digits)")
            }
        }
        for file in [allowedSigners, gpgKeyring].compactMap({ $0 }) where !FileManager.default.isReadableFile(atPath: file) {
            throw ValidationError("cannot read \(file)")
        }
    }

    var policy: SignaturePolicy {
        SignaturePolicy(allowedSignersFile: allowedSigners.map(absolute), gpgKeyring: gpgKeyring.map(absolute),
                        trustedFingerprints: trustedFingerprint)
    }

    private func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL.path
    }
}

extension VerifyMode: ExpressibleByArgument {}

/// Reporting back: a commit status per outcome on GitHub, GitLab or Gitea, and a generic signed JSON webhook;
/// on the commands that apply a commit.
struct ReportOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Post a commit status per outcome (pending while the plan runs, then success or failure).",
                               valueName: "github|gitlab|gitea"))
    var statusProvider: ReportSettings.Provider?

    @Option(help: ArgumentHelp("The API's base URL. Default: https://api.github.com for github; for gitlab and gitea "
        + "https://HOST/api/v4 or /api/v1 of the --repo URL's host.", valueName: "url"))
    var statusApi: String?

    @Option(help: ArgumentHelp("OWNER/NAME (GitHub, Gitea) or the project id or path (GitLab). Default: the path of the --repo URL.",
                               valueName: "repo"))
    var statusRepo: String?

    @Option(help: "A file holding the API token (read again for each status, never logged).")
    var statusTokenFile: String?

    @Option(help: "The status's name (GitHub's and Gitea's context, GitLab's name).")
    var statusContext = "teal"

    @Option(help: ArgumentHelp("A link shown with each status (the status page, say).", valueName: "url"))
    var statusTargetUrl: String?

    @Option(help: ArgumentHelp("POST a JSON document for each pending commit and each outcome to this URL.", valueName: "url"))
    var notifyUrl: String?

    @Option(help: "A file holding the secret that signs --notify-url's body (X-Teal-Signature-256: sha256=<hex HMAC-SHA256>).")
    var notifySecretFile: String?

    @Option(help: "Tries per status or webhook request, with a doubling backoff from 500ms, before it is given up and counted.")
    var reportAttempts = 4

    /// The settings, checked, with the API and repository derived from `repository` where not given.
    func settings(repository: String) throws -> ReportSettings {
        let settings = ReportSettings(provider: statusProvider, api: statusApi, repository: statusRepo, tokenFile: statusTokenFile.map(absolute),
                                      context: statusContext, targetURL: statusTargetUrl, notifyURL: notifyUrl,
                                      notifySecretFile: notifySecretFile.map(absolute), attempts: max(1, reportAttempts))
        do {
            return try settings.resolved(repositoryURL: repository)
        } catch let error as ReportSettingsError {
            throw CLIError(error.description)
        }
    }

    private func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL.path
    }
}

extension ReportSettings.Provider: ExpressibleByArgument {}
