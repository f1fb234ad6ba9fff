import Foundation

/// Where outcomes are reported: a commit status on GitHub, GitLab or Gitea, and/or a generic JSON webhook.
/// Tokens and secrets are named by files, read again for every request and never logged.
public struct ReportSettings: Sendable, Equatable {
    public enum Provider: String, Sendable, CaseIterable {
        case github, gitlab, gitea
    }

    /// The commit status API; nil for no commit statuses.
    public var provider: Provider?
    /// The API's base URL (`https://api.github.com`, `https://gitlab.example.com/api/v4`, `https://gitea.example.com/api/v1`).
    public var api: String?
    /// GitHub and Gitea: `owner/name`. GitLab: the project's numeric id or its path (`group/sub/name`).
    public var repository: String?
    /// A file holding the API token.
    public var tokenFile: String?
    /// The status's name: GitHub's and Gitea's `context`, GitLab's `name`.
    public var context: String
    /// A link shown with the status (the agent's status page, say).
    public var targetURL: String?
    /// The generic webhook: a JSON document POSTed for `pending` and for each outcome.
    public var notifyURL: String?
    /// A file holding the webhook's HMAC-SHA256 secret (`X-Teal-Signature-256`); unsigned without one.
    public var notifySecretFile: String?
    /// Tries per request before it is given up (logged and counted).
    public var attempts: Int
    /// The wait after the first failed try; doubled after each further one.
    public var backoff: Duration
    /// How long one try may take.
    public var timeout: Duration

    public init(provider: Provider? = nil, api: String? = nil, repository: String? = nil, tokenFile: String? = nil, context: String = "teal",
                targetURL: String? = nil, notifyURL: String? = nil, notifySecretFile: String? = nil, attempts: Int = 4,
                backoff: Duration = .milliseconds(500), timeout: Duration = .seconds(10)) {
        self.provider = provider
        self.api = api
        self.repository = repository
        self.tokenFile = tokenFile
        self.context = context
        self.targetURL = targetURL
        self.notifyURL = notifyURL
        self.notifySecretFile = notifySecretFile
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
    }

    /// Anything to report to.
    public var isEnabled: Bool { provider != nil || notifyURL != nil }

    /// The settings with the API and repository filled in from the desired-state repository's URL where they were
    /// not given (`git@github.com:acme/deploy.git` → `https://api.github.com`, `acme/deploy`), checked. Throws a
    /// message naming the option to give when something cannot be derived or is malformed.
    public func resolved(repositoryURL: String) throws -> ReportSettings {
        var settings = self
        let remote = RepositoryLocation.parse(repositoryURL)
        if let provider {
            if settings.api == nil {
                switch provider {
                case .github:
                    settings.api = remote.map { $0.host == "github.com" ? "https://api.github.com" : "https://\($0.host)/api/v3" }
                        ?? "https://api.github.com"
                case .gitlab:
                    settings.api = remote.map { "https://\($0.host)/api/v4" }
                case .gitea:
                    settings.api = remote.map { "https://\($0.host)/api/v1" }
                }
            }
            guard let api = settings.api else {
                throw ReportSettingsError("--status-provider \(provider.rawValue) needs --status-api URL (the API's base URL): "
                    + "it cannot be derived from \(repositoryURL), which is not a remote URL")
            }
            guard Self.isHTTPURL(api) else { throw ReportSettingsError("--status-api \(api) is not an http:// or https:// URL") }
            settings.api = api.hasSuffix("/") ? String(api.dropLast()) : api
            if settings.repository == nil { settings.repository = remote?.path }
            guard let repository = settings.repository, !repository.isEmpty else {
                throw ReportSettingsError("--status-provider \(provider.rawValue) needs --status-repo "
                    + (provider == .gitlab ? "PROJECT (its id or group/name)" : "OWNER/NAME")
                    + ": it cannot be derived from \(repositoryURL)")
            }
            try Self.checkRepository(repository, provider: provider)
            guard let tokenFile = settings.tokenFile else {
                throw ReportSettingsError("--status-provider \(provider.rawValue) needs --status-token-file FILE (a file holding the API token)")
            }
            guard FileManager.default.isReadableFile(atPath: tokenFile) else {
                throw ReportSettingsError("--status-token-file \(tokenFile): cannot read the file")
            }
            guard !settings.context.isEmpty, !settings.context.contains(where: \.isNewline) else {
                throw ReportSettingsError("--status-context must be one non-empty line")
            }
        } else if api != nil || repository != nil || tokenFile != nil {
            throw ReportSettingsError("--status-api, --status-repo and --status-token-file take effect only with --status-provider github|gitlab|gitea")
        }
        if let url = settings.targetURL, !Self.isHTTPURL(url) {
            throw ReportSettingsError("--status-target-url \(url) is not an http:// or https:// URL")
        }
        if let url = settings.notifyURL, !Self.isHTTPURL(url) {
            throw ReportSettingsError("--notify-url is not an http:// or https:// URL (it starts \(url.prefix(8).debugDescription))")
        }
        if let file = settings.notifySecretFile {
            guard settings.notifyURL != nil else { throw ReportSettingsError("--notify-secret-file takes effect only with --notify-url") }
            guard FileManager.default.isReadableFile(atPath: file) else {
                throw ReportSettingsError("--notify-secret-file \(file): cannot read the file")
            }
        }
        return settings
    }

    static func isHTTPURL(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty else { return false }
        return url.user == nil && url.password == nil
    }

    static func checkRepository(_ repository: String, provider: Provider) throws {
        let parts = repository.split(separator: "/", omittingEmptySubsequences: false)
        let allowed = { (c: Character) in c.isASCII && (c.isLetter || c.isNumber || "-_.".contains(c)) }
        let valid = parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." && $0.allSatisfy(allowed) }
        switch provider {
        case .github, .gitea:
            guard parts.count == 2, valid else {
                throw ReportSettingsError("--status-repo \(repository) is not OWNER/NAME (letters, digits, '-', '_' and '.')")
            }
        case .gitlab:
            guard valid, parts.count == 1 ? repository.allSatisfy(\.isNumber) : true else {
                throw ReportSettingsError("--status-repo \(repository) is neither a GitLab project id (digits) nor a path (group/name)")
            }
        }
    }
}

/// Settings that cannot work, with the option to fix.
public struct ReportSettingsError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The host and repository path of a remote URL, as forges spell them: `git@github.com:acme/deploy.git`,
/// `ssh://git@gitlab.example.com:2222/group/sub/deploy.git` and `https://gitea.example.com/acme/deploy` all name a
/// host and a path without `.git`.
public struct RepositoryLocation: Sendable, Equatable {
    public var host: String
    public var path: String

    public static func parse(_ url: String) -> RepositoryLocation? {
        guard RemoteURL.isRemote(url) else { return nil }
        var host: Substring
        var path: Substring
        if let scheme = url.range(of: "://") {
            guard ["ssh", "https", "http", "git"].contains(url[..<scheme.lowerBound].lowercased()) else { return nil }
            let rest = url[scheme.upperBound...]
            let authority = rest.prefix { $0 != "/" }
            path = rest.dropFirst(authority.count)
            host = authority.split(separator: "@").last ?? authority
            if host.hasPrefix("[") {
                host = host.prefix { $0 != "]" }.dropFirst()
            } else if let colon = host.lastIndex(of: ":") {
                host = host[..<colon]
            }
        } else {
            // scp-like user@host:path
            guard let colon = url.firstIndex(of: ":") else { return nil }
            let authority = url[..<colon]
            host = authority.split(separator: "@").last ?? authority
            path = url[url.index(after: colon)...]
        }
        var trimmed = String(path.drop { $0 == "/" })
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        if trimmed.hasSuffix(".git") { trimmed.removeLast(4) }
        if trimmed.hasPrefix("~") { return nil }
        guard !host.isEmpty, !trimmed.isEmpty, trimmed.contains("/") else { return nil }
        return RepositoryLocation(host: host.lowercased(), path: trimmed)
    }
}
