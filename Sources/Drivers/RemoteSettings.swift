import Crypto
import Foundation
import Git
import Reconcile

/// Where a remote repository's credentials and trust come from: files on the host, named by options or the
/// configuration file, read again on every fetch (so rotation needs no restart), never logged, never from git.
public struct RemoteSettings: Sendable {
    public var sshKeyFile: String?
    public var sshPassphraseFile: String?
    public var sshAgent = false
    /// An OpenSSH known_hosts file (hashed entries included).
    public var knownHostsFile: String?
    /// Pinned host key fingerprints, `SHA256:...`; several allowed, for rotation.
    public var hostKeyFingerprints: [String] = []
    public var httpUser: String?
    public var passwordFile: String?
    public var tokenFile: String?
    /// Certificate authorities for HTTPS, PEM.
    public var caFile: String?
    /// An HTTP(S) proxy for http(s) URLs.
    public var proxy: String?
    /// Push each outcome's note to the remote's `refs/notes/teal`.
    public var pushNotes = false

    public init() {}

    /// The authentication for one network operation against `url`, with secrets read from their files now.
    public func authentication(for url: String) throws -> RemoteAuthentication {
        var auth = RemoteAuthentication()
        auth.sshPrivateKey = sshKeyFile
        auth.sshPassphrase = try sshPassphraseFile.map { try Self.secret($0, what: "SSH passphrase") }
        auth.sshAgent = sshAgent
        auth.username = httpUser
        auth.password = try passwordFile.map { try Self.secret($0, what: "password") }
        auth.bearerToken = try tokenFile.map { try Self.secret($0, what: "token") }
        auth.proxy = proxy
        if let caFile { try Libgit2.trustCertificates(in: caFile) }
        let known = try knownHostsFile.map { try KnownHosts(file: $0) }
        let pins = Set(hostKeyFingerprints.map { $0.hasSuffix("=") ? String($0.prefix { $0 != "=" }) : $0 })
        let port = RemoteURL.port(of: url)
        auth.hostKeyCheck = { host, type, key, sha256 in
            let fingerprint = "SHA256:" + Data(sha256).base64EncodedString().replacingOccurrences(of: "=", with: "")
            if pins.contains(fingerprint) { return true }
            return known?.trusts(host: host, port: port, type: type, key: key) ?? false
        }
        return auth
    }

    /// A one-line secret file's content, without its line end. Errors name the file, never the content.
    static func secret(_ path: String, what: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ReconcileFailure.permanent("cannot read the \(what) file \(path)")
        }
        return text.trimmingCharacters(in: .newlines)
    }
}

/// Entries of an OpenSSH known_hosts file: `host[,host...] type base64-key` with `[host]:port` for other ports
/// and `|1|salt|hash` hashed host names. Markers (`@revoked`, `@cert-authority`) are not trusted.
struct KnownHosts: Sendable {
    struct Entry: Sendable {
        var hosts: [String]
        var type: String
        var key: [UInt8]
    }

    let entries: [Entry]

    init(file: String) throws {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw ReconcileFailure.permanent("cannot read the known_hosts file \(file)")
        }
        entries = text.split(whereSeparator: \.isNewline).compactMap { line in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count >= 3, !fields[0].hasPrefix("#"), !fields[0].hasPrefix("@"),
                  let key = Data(base64Encoded: fields[2]) else { return nil }
            return Entry(hosts: fields[0].split(separator: ",").map(String.init), type: fields[1], key: Array(key))
        }
    }

    func trusts(host: String, port: Int?, type: String, key: [UInt8]) -> Bool {
        let name = port.map { $0 == 22 ? host : "[\(host)]:\($0)" } ?? host
        return entries.contains { entry in
            entry.type == type && entry.key == key && entry.hosts.contains { Self.matches($0, name) }
        }
    }

    static func matches(_ pattern: String, _ name: String) -> Bool {
        guard pattern.hasPrefix("|1|") else { return pattern == name }
        let parts = pattern.dropFirst(3).split(separator: "|")
        guard parts.count == 2, let salt = Data(base64Encoded: String(parts[0])), let hash = Data(base64Encoded: String(parts[1])) else {
            return false
        }
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: salt))
        return Data(mac) == hash
    }
}

/// What teal needs to know of a repository URL.
public enum RemoteURL {
    /// A URL teal fetches from (ssh://, scp-like user@host:path, https://, http://, git://, file://), as opposed to
    /// a local path it reads in place.
    public static func isRemote(_ url: String) -> Bool {
        if url.contains("://") { return true }
        guard let colon = url.firstIndex(of: ":"), let at = url.firstIndex(of: "@"), at < colon else { return false }
        return !url[..<colon].contains("/")
    }

    /// The port an ssh:// URL names, nil for the default.
    static func port(of url: String) -> Int? {
        guard url.hasPrefix("ssh://") else { return nil }
        let rest = url.dropFirst("ssh://".count)
        let authority = rest.prefix { $0 != "/" }
        let hostPort = authority.split(separator: "@").last ?? authority[...]
        guard let colon = hostPort.lastIndex(of: ":"), !hostPort.hasSuffix("]") else { return nil }
        return Int(hostPort[hostPort.index(after: colon)...])
    }
}
