import CLibgit2
import Foundation

/// How teal proves who it is to a remote and decides whether to trust it. Secrets are read from files by the
/// caller on every fetch (so a rotated key or token needs no restart) and never logged.
public struct RemoteAuthentication: Sendable {
    /// SSH: a private key file, its passphrase (read from a file), or the ssh-agent.
    public var sshPrivateKey: String?
    public var sshPassphrase: String?
    public var sshAgent = false
    /// HTTP(S) Basic.
    public var username: String?
    public var password: String?
    /// HTTP(S) `Authorization: Bearer`.
    public var bearerToken: String?
    /// Decides on an SSH host key: (host, key type name, raw key blob, SHA-256 of the blob) → trusted. There is
    /// no trust on first use: without a check every SSH host is refused.
    public var hostKeyCheck: (@Sendable (_ host: String, _ type: String, _ key: [UInt8], _ sha256: [UInt8]) -> Bool)?
    /// An HTTP(S) proxy for http(s) URLs.
    public var proxy: String?
    /// How many times a rejected credential is offered again before giving up (libgit2 would ask forever).
    public var maximumAttempts = 2

    public init() {}
}

/// A bare mirror of a remote repository in teal's data dir, fetched through libgit2 (no git CLI, no work tree):
/// branches land as `refs/heads/*` of the mirror, pruned, so its trees are read exactly as a local repository's.
public final class RemoteMirror {
    public let url: String
    public let repository: Repository

    /// Opens the mirror at `path`, creating a bare repository whose `origin` is `url` when there is none.
    public init(path: String, url: String) throws {
        Libgit2.ensure()
        self.url = url
        if FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("HEAD")) {
            repository = try Repository(path: path)
        } else {
            var options = git_repository_init_options()
            try check(git_repository_init_options_init(&options, UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION)), "init options")
            options.flags = GIT_REPOSITORY_INIT_MKPATH.rawValue | GIT_REPOSITORY_INIT_BARE.rawValue
            var repo: OpaquePointer?
            try check(git_repository_init_ext(&repo, path, &options), "create mirror \(path)")
            repository = Repository(adopting: repo!)
        }
        var remote: OpaquePointer?
        if git_remote_lookup(&remote, repository.pointer, "origin") == 0 {
            let current = git_remote_url(remote).map { String(cString: $0) }
            git_remote_free(remote)
            if current != url { try check(git_remote_set_url(repository.pointer, "origin", url), "set the mirror's URL") }
        } else {
            try check(git_remote_create_with_fetchspec(&remote, repository.pointer, "origin", url, "+refs/heads/*:refs/heads/*"),
                      "add remote \(Self.redacted(url))")
            git_remote_free(remote)
        }
    }

    /// The remote's branches and their tips, from one ref advertisement (no objects are transferred).
    public func branches(_ auth: RemoteAuthentication) throws -> [String: ObjectID] {
        try withRemote(auth) { remote, callbacks, proxy, headers in
            var connect = git_remote_connect_options()
            try check(git_remote_connect_options_init(&connect, UInt32(GIT_REMOTE_CONNECT_OPTIONS_VERSION)), "connect options")
            connect.callbacks = callbacks
            connect.proxy_opts = proxy
            connect.custom_headers = headers
            // A redirect could carry the bearer token to another host: none is followed.
            connect.follow_redirects = GIT_REMOTE_REDIRECT_NONE
            try check(git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &connect), "connect to \(Self.redacted(url))")
            defer { git_remote_disconnect(remote) }
            var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
            var count = 0
            try check(git_remote_ls(&heads, &count, remote), "list the refs of \(Self.redacted(url))")
            var result: [String: ObjectID] = [:]
            for index in 0..<count {
                guard let head = heads?[index]?.pointee, let name = head.name.map({ String(cString: $0) }),
                      name.hasPrefix("refs/heads/") else { continue }
                result[String(name.dropFirst("refs/heads/".count))] = ObjectID(head.oid)
            }
            return result
        }
    }

    /// Fetches every branch, pruning those the remote deleted, and the remote's teal notes into `notesRef`.
    public func fetch(_ auth: RemoteAuthentication, notesRef: String = "refs/notes/remote-teal") throws {
        try withRemote(auth) { remote, callbacks, proxy, headers in
            var options = git_fetch_options()
            try check(git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION)), "fetch options")
            options.callbacks = callbacks
            options.proxy_opts = proxy
            options.custom_headers = headers
            options.follow_redirects = GIT_REMOTE_REDIRECT_NONE
            options.prune = GIT_FETCH_PRUNE
            options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
            let specs = ["+refs/heads/*:refs/heads/*", "+\(Repository.defaultNotesRef):\(notesRef)"]
            try withStrArray(specs) { refspecs in
                try check(git_remote_fetch(remote, &refspecs, &options, "fetch"), "fetch \(Self.redacted(url))")
            }
        }
    }

    /// Pushes `ref` to the same name on the remote, without force: a remote that moved meanwhile refuses it, and
    /// the refusal is an error (libgit2 only reports a server's refusal of a ref to a callback).
    public func push(_ ref: String, _ auth: RemoteAuthentication) throws {
        try withRemote(auth) { remote, callbacks, proxy, headers in
            var options = git_push_options()
            try check(git_push_options_init(&options, UInt32(GIT_PUSH_OPTIONS_VERSION)), "push options")
            options.callbacks = callbacks
            options.callbacks.push_update_reference = pushReferenceCallback
            options.proxy_opts = proxy
            options.custom_headers = headers
            options.follow_redirects = GIT_REMOTE_REDIRECT_NONE
            try withStrArray(["\(ref):\(ref)"]) { refspecs in
                try check(git_remote_push(remote, &refspecs, &options), "push \(ref) to \(Self.redacted(url))")
            }
        }
    }

    /// The URL without any password it may carry, for messages.
    public static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        let userInfo = url[scheme.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return url.replacingCharacters(in: colon..<at, with: ":***")
    }

    private func withRemote<T>(_ auth: RemoteAuthentication,
                               _ body: (OpaquePointer, inout git_remote_callbacks, inout git_proxy_options, inout git_strarray) throws -> T) throws -> T {
        var remote: OpaquePointer?
        try check(git_remote_lookup(&remote, repository.pointer, "origin"), "look up the mirror's remote")
        defer { git_remote_free(remote) }
        let context = CallbackContext(auth)
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        var callbacks = git_remote_callbacks()
        try check(git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION)), "callbacks")
        callbacks.payload = unmanaged.toOpaque()
        callbacks.credentials = credentialCallback
        callbacks.certificate_check = certificateCallback
        var proxy = git_proxy_options()
        try check(git_proxy_options_init(&proxy, UInt32(GIT_PROXY_OPTIONS_VERSION)), "proxy options")
        let proxyURL = auth.proxy.map { strdup($0) }
        defer { proxyURL.map { free($0) } }
        if let proxyURL {
            proxy.type = GIT_PROXY_SPECIFIED
            proxy.url = UnsafePointer(proxyURL)
        }
        let headers = auth.bearerToken.map { ["Authorization: Bearer \($0)"] } ?? []
        do {
            let result = try withStrArray(headers) { headerArray in
                try body(remote!, &callbacks, &proxy, &headerArray)
            }
            if let rejected = context.rejected {
                throw GitError(code: GIT_ENONFASTFORWARD.rawValue, operation: "push to \(Self.redacted(url))", message: rejected)
            }
            return result
        } catch var error as GitError {
            // Say why in teal's words when a callback refused (libgit2 only reports that a callback failed).
            if let reason = context.failure { error.message = reason }
            throw error
        }
    }
}

/// What the libgit2 callbacks of one network operation share.
final class CallbackContext {
    let auth: RemoteAuthentication
    var attempts = 0
    /// Why a callback refused, in words for the error.
    var failure: String?
    /// A ref the remote refused to update on a push, and why.
    var rejected: String?

    init(_ auth: RemoteAuthentication) { self.auth = auth }
}

private func context(_ payload: UnsafeMutableRawPointer?) -> CallbackContext? {
    payload.map { Unmanaged<CallbackContext>.fromOpaque($0).takeUnretainedValue() }
}

private let credentialCallback: git_credential_acquire_cb = { out, url, usernameFromURL, allowed, payload in
    guard let out, let context = context(payload) else { return -1 }
    context.attempts += 1
    let auth = context.auth
    guard context.attempts <= auth.maximumAttempts else {
        context.failure = "the remote refused the credentials (\(context.attempts - 1) attempts); check the key, password or token file"
        if let key = auth.sshPrivateKey, SSHKeyFile.isRSA(key) {
            context.failure! += "; \(key) is an RSA key, which servers that refuse SHA-1 signatures (ssh-rsa; OpenSSH 8.8 and later by default) "
                + "may not accept from this SSH library: use an ed25519 or ECDSA key"
        }
        return -1
    }
    let user = usernameFromURL.map { String(cString: $0) } ?? auth.username ?? "git"
    if allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0 {
        if let key = auth.sshPrivateKey {
            return git_credential_ssh_key_new(out, user, nil, key, auth.sshPassphrase)
        }
        if auth.sshAgent { return git_credential_ssh_key_from_agent(out, user) }
        context.failure = "the remote asks for an SSH key; give one with --ssh-key (or --ssh-agent)"
        return -1
    }
    if allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0 {
        if let password = auth.password {
            return git_credential_userpass_plaintext_new(out, auth.username ?? user, password)
        }
        context.failure = auth.bearerToken == nil
            ? "the remote asks for a user name and password; give them with --http-user and --password-file, or --token-file"
            : "the remote refused the bearer token"
        return -1
    }
    if allowed & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
        return git_credential_username_new(out, user)
    }
    context.failure = "the remote asks for credentials of a kind teal does not offer"
    return -1
}

private let pushReferenceCallback: git_push_update_reference_cb = { refname, status, payload in
    guard let status, let context = context(payload) else { return 0 }
    let name = refname.map { String(cString: $0) } ?? "?"
    context.rejected = "the remote refused to update \(name): \(String(cString: status))"
    return 0
}

private let certificateCallback: git_transport_certificate_check_cb = { cert, valid, host, payload in
    guard let cert, let context = context(payload) else { return -1 }
    let hostName = host.map { String(cString: $0) } ?? "?"
    guard cert.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 else {
        // TLS: the certificate chain was checked against the system's (or --ca-file's) authorities.
        if valid != 0 { return 0 }
        context.failure = "the TLS certificate of \(hostName) is not trusted (give its authority with --ca-file)"
        return -1
    }
    let hostkey = UnsafeRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee
    guard hostkey.type.rawValue & GIT_CERT_SSH_RAW.rawValue != 0, hostkey.type.rawValue & GIT_CERT_SSH_SHA256.rawValue != 0,
          let raw = hostkey.hostkey else {
        context.failure = "the SSH host key of \(hostName) cannot be checked"
        return -1
    }
    let key = Array(UnsafeRawBufferPointer(start: raw, count: hostkey.hostkey_len))
    let sha256 = withUnsafeBytes(of: hostkey.hash_sha256) { Array($0) }
    let type = switch hostkey.raw_type {
    case GIT_CERT_SSH_RAW_TYPE_RSA: "ssh-rsa"
    case GIT_CERT_SSH_RAW_TYPE_DSS: "ssh-dss"
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256: "ecdsa-sha2-nistp256"
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384: "ecdsa-sha2-nistp384"
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521: "ecdsa-sha2-nistp521"
    case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519: "ssh-ed25519"
    default: "unknown"
    }
    if context.auth.hostKeyCheck?(hostName, type, key, sha256) == true { return 0 }
    let fingerprint = "SHA256:" + Data(sha256).base64EncodedString().replacingOccurrences(of: "=", with: "")
    context.failure = "the SSH host key of \(hostName) (\(type) \(fingerprint)) is not trusted: "
        + "add it to the --known-hosts file or pin it with --host-key"
    return -1
}

/// Runs `body` with a libgit2 string array of `strings`.
func withStrArray<T>(_ strings: [String], _ body: (inout git_strarray) throws -> T) throws -> T {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return try pointers.withUnsafeMutableBufferPointer { buffer in
        var array = git_strarray(strings: buffer.baseAddress, count: strings.count)
        return try body(&array)
    }
}

extension Libgit2 {
    /// Trusts the certificate authorities in `file` for HTTPS (process-wide in libgit2).
    public static func trustCertificates(in file: String) throws {
        ensure()
        try check(teal_git_set_ssl_cert_file(file), "use the CA file \(file)")
    }
}

/// What kind of key a private key file holds, read from its public part (never the secret).
enum SSHKeyFile {
    /// True for a PEM `RSA PRIVATE KEY` or an OpenSSH-format key whose public key is `ssh-rsa`.
    static func isRSA(_ path: String) -> Bool {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
        if text.contains("-----BEGIN RSA PRIVATE KEY-----") { return true }
        guard let begin = text.range(of: "-----BEGIN OPENSSH PRIVATE KEY-----"),
              let end = text.range(of: "-----END OPENSSH PRIVATE KEY-----", range: begin.upperBound..<text.endIndex) else { return false }
        let body = text[begin.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(body)) else { return false }
        // "openssh-key-v1\0", cipher, KDF, KDF options, key count, then the first public key: its first field is
        // the key type. The public part is never encrypted.
        var bytes = [UInt8](data)[...]
        let magic = Array("openssh-key-v1".utf8) + [0]
        guard bytes.starts(with: magic) else { return false }
        bytes = bytes.dropFirst(magic.count)
        func string() -> ArraySlice<UInt8>? {
            guard bytes.count >= 4 else { return nil }
            let length = bytes.prefix(4).reduce(0) { $0 << 8 | Int($1) }
            bytes = bytes.dropFirst(4)
            guard length <= bytes.count else { return nil }
            defer { bytes = bytes.dropFirst(length) }
            return bytes.prefix(length)
        }
        guard string() != nil, string() != nil, string() != nil, bytes.count >= 4 else { return false } // cipher, KDF, options
        bytes = bytes.dropFirst(4) // number of keys
        guard var publicKey = string() else { return false }
        guard publicKey.count >= 4 else { return false }
        let typeLength = publicKey.prefix(4).reduce(0) { $0 << 8 | Int($1) }
        publicKey = publicKey.dropFirst(4)
        return typeLength <= publicKey.count && Array(publicKey.prefix(typeLength)) == Array("ssh-rsa".utf8)
    }
}
