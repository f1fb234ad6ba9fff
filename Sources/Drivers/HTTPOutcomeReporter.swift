import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Reconcile
import State
import Synchronization

/// One HTTP request a report becomes, before it is sent: built purely from the report, the settings and the
/// token or secret read for it.
public struct ReportRequest: Sendable, Equatable {
    /// `github`, `gitlab`, `gitea` or `webhook`: the metrics' label and the logs' name for it.
    public var target: String
    public var url: String
    public var headers: [String: String]
    public var body: Data
}

/// The commit status states each API takes, and the documents they are sent as.
public enum ReportRequests {
    /// The state a forge is told: GitHub pending/success/failure/error, GitLab pending/running/success/failed/
    /// canceled, Gitea pending/success/error/failure/warning.
    ///
    /// A plan that starts is `pending` (GitLab: `running`, what its pipelines show while a job runs); `applied`
    /// and `noop` (nothing under apps/ changed: what serves is the commit's desired state) are `success`;
    /// `failed` and `refused` (an invariant, a signature or rewritten history kept the commit from being applied)
    /// are `failure` (GitLab: `failed`); `superseded` (a newer commit took over before the plan finished: this one
    /// was not applied, nothing is wrong with it) is GitHub's `error`, Gitea's `warning` and GitLab's `canceled`.
    public static func state(_ report: CommitReport, provider: ReportSettings.Provider) -> String {
        guard report.event == .outcome, let outcome = report.outcome else { return provider == .gitlab ? "running" : "pending" }
        switch outcome {
        case .applied, .noop: return "success"
        case .failed, .refused: return provider == .gitlab ? "failed" : "failure"
        case .superseded:
            switch provider {
            case .github: return "error"
            case .gitea: return "warning"
            case .gitlab: return "canceled"
            }
        }
    }

    /// The generic webhook's `state`, as GitHub spells it.
    public static func genericState(_ report: CommitReport) -> String { state(report, provider: .github) }

    /// `POST {api}/repos/{owner}/{repo}/statuses/{sha}` (GitHub, Gitea) or `POST {api}/projects/{id}/statuses/{sha}`
    /// (GitLab), with the token in the header each documents.
    public static func commitStatus(_ report: CommitReport, settings: ReportSettings, token: String) -> ReportRequest? {
        guard let provider = settings.provider, let api = settings.api, let repository = settings.repository else { return nil }
        let description = truncated(report.message, to: 140)
        var body: [String: String] = ["state": state(report, provider: provider), "description": description]
        if let url = settings.targetURL { body["target_url"] = url }
        var headers = ["Content-Type": "application/json", "User-Agent": "teal"]
        let url: String
        switch provider {
        case .github:
            url = "\(api)/repos/\(repository)/statuses/\(report.commit)"
            body["context"] = settings.context
            headers["Authorization"] = "Bearer \(token)"
            headers["Accept"] = "application/vnd.github+json"
            headers["X-GitHub-Api-Version"] = "2022-11-28"
        case .gitea:
            url = "\(api)/repos/\(repository)/statuses/\(report.commit)"
            body["context"] = settings.context
            headers["Authorization"] = "token \(token)"
            headers["Accept"] = "application/json"
        case .gitlab:
            let project = repository.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? repository
            url = "\(api)/projects/\(project)/statuses/\(report.commit)"
            body["name"] = settings.context
            headers["PRIVATE-TOKEN"] = token
            headers["Accept"] = "application/json"
        }
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return ReportRequest(target: provider.rawValue, url: url, headers: headers, body: data)
    }

    /// The generic webhook's document.
    struct Document: Encodable {
        var event: String
        var state: String
        var commit: String
        var outcome: String?
        var apps: [String]
        var message: String
        var errors: [String]
        var superseded_by: String?
        var host: String
        var time: String
        var repository: String
        var branch: String
    }

    /// The generic webhook: `POST {notify-url}` with the JSON document, `X-Teal-Event`, and with a secret
    /// `X-Teal-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    public static func webhook(_ report: CommitReport, url: String, secret: [UInt8]?, repository: String, branch: String) -> ReportRequest {
        let document = Document(event: report.event.rawValue, state: genericState(report), commit: report.commit,
                                outcome: report.outcome?.rawValue, apps: report.apps, message: report.message, errors: report.errors,
                                superseded_by: report.supersededBy, host: report.host, time: report.time.formatted(.iso8601),
                                repository: withoutCredentials(repository), branch: branch)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(document)) ?? Data()
        var headers = ["Content-Type": "application/json", "User-Agent": "teal", "X-Teal-Event": report.event.rawValue]
        if let secret { headers["X-Teal-Signature-256"] = signature(body, secret: secret) }
        return ReportRequest(target: "webhook", url: url, headers: headers, body: body)
    }

    /// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
    public static func signature(_ body: Data, secret: [UInt8]) -> String {
        "sha256=" + HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret)).map { String(format: "%02x", $0) }.joined()
    }

    /// A URL without the user and password it may carry (`https://user:pass@host/x` → `https://host/x`).
    static func withoutCredentials(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].prefix(while: { $0 != "/" }).lastIndex(of: "@") else {
            return url
        }
        return String(url[..<scheme.upperBound]) + url[url.index(after: at)...]
    }

    static func truncated(_ text: String, to limit: Int) -> String {
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return line.count <= limit ? line : String(line.prefix(limit - 1)) + "…"
    }
}

/// Delivers reports over HTTP(S) with AsyncHTTPClient, one at a time in the order they came (a commit's
/// `pending` is delivered before its outcome), each request tried `attempts` times with a doubling backoff.
/// What is given up is logged without its token and counted; nothing here ever fails a pass or waits in one.
public final class HTTPOutcomeReporter: OutcomeReporter, Sendable {
    let settings: ReportSettings
    let repository: String
    let branch: String
    let metrics: any ReconcileMetrics
    let logger: Logger
    let client: HTTPClient
    private let queue: AsyncStream<CommitReport>.Continuation
    /// Reports queued and not yet delivered or given up.
    private let outstanding = Mutex(0)
    private let worker: Mutex<Task<Void, Never>?> = Mutex(nil)

    public init(settings: ReportSettings, repository: String, branch: String, metrics: any ReconcileMetrics = NoMetrics(),
                logger: Logger = Logger(label: "teal.report"), client: HTTPClient = HTTPOutcomeReporter.client) {
        self.settings = settings
        self.repository = repository
        self.branch = branch
        self.metrics = metrics
        self.logger = logger
        self.client = client
        let (stream, continuation) = AsyncStream<CommitReport>.makeStream()
        queue = continuation
        let task = Task { [weak self] in
            for await report in stream {
                guard let self else { return }
                await self.deliver(report)
                self.outstanding.withLock { $0 -= 1 }
            }
        }
        worker.withLock { $0 = task }
    }

    deinit {
        queue.finish()
    }

    /// The process's client for reports: a connection that cannot be made fails the try at once (the reporter
    /// retries with its own backoff, instead of the pool retrying until the request's deadline), and redirects
    /// are not followed, so a token never goes to another host. Never shut down: it lives as long as the process.
    public static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(10))
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    public func report(_ report: CommitReport) {
        outstanding.withLock { $0 += 1 }
        if case .terminated = queue.yield(report) { outstanding.withLock { $0 -= 1 } }
    }

    public func flush(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while outstanding.withLock({ $0 }) > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = outstanding.withLock { $0 }
        if left > 0 { logger.warning("\(left) commit status report\(left == 1 ? "" : "s") not delivered before exit") }
    }

    /// The requests of one report: the commit status and the webhook, as configured. A token or secret file
    /// that cannot be read is a delivery failure of that request.
    func requests(for report: CommitReport) -> [Result<ReportRequest, ReportDeliveryError>] {
        var requests: [Result<ReportRequest, ReportDeliveryError>] = []
        if let provider = settings.provider, let file = settings.tokenFile {
            switch Self.readSecret(file) {
            case .success(let token):
                if let request = ReportRequests.commitStatus(report, settings: settings, token: String(decoding: token, as: UTF8.self)) {
                    requests.append(.success(request))
                }
            case .failure(let error):
                requests.append(.failure(ReportDeliveryError(target: provider.rawValue, message: "--status-token-file \(file): \(error.message)")))
            }
        }
        if let url = settings.notifyURL {
            if let file = settings.notifySecretFile {
                switch Self.readSecret(file) {
                case .success(let secret):
                    requests.append(.success(ReportRequests.webhook(report, url: url, secret: secret, repository: repository, branch: branch)))
                case .failure(let error):
                    requests.append(.failure(ReportDeliveryError(target: "webhook", message: "--notify-secret-file \(file): \(error.message)")))
                }
            } else {
                requests.append(.success(ReportRequests.webhook(report, url: url, secret: nil, repository: repository, branch: branch)))
            }
        }
        return requests
    }

    func deliver(_ report: CommitReport) async {
        for request in requests(for: report) {
            switch request {
            case .failure(let error):
                logger.warning("cannot report \(report.event == .pending ? "pending" : report.outcome?.rawValue ?? "") for \(report.commit.prefix(8)) to \(error.target): \(error.message)")
                metrics.reportDelivered(target: error.target, delivered: false)
            case .success(let request):
                await send(request, report: report)
            }
        }
    }

    func send(_ request: ReportRequest, report: CommitReport) async {
        var wait = settings.backoff
        var lastError = ""
        let attempts = max(1, settings.attempts)
        for attempt in 1...attempts {
            switch await sendOnce(request) {
            case .delivered:
                logger.debug("reported \(report.event.rawValue) for \(report.commit.prefix(8)) to \(request.target)")
                metrics.reportDelivered(target: request.target, delivered: true)
                return
            case .retry(let why):
                lastError = why
            case .permanent(let why):
                logger.warning("\(request.target) refused the report for \(report.commit.prefix(8)) at \(urlOrigin(request.url)): \(why); not retried")
                metrics.reportDelivered(target: request.target, delivered: false)
                return
            }
            if attempt < attempts {
                try? await Task.sleep(for: wait)
                wait *= 2
            }
        }
        let message = "could not deliver the \(request.target) report for \(report.commit.prefix(8)) to \(urlOrigin(request.url)) after \(attempts) "
            + "attempt\(attempts == 1 ? "" : "s"): \(lastError); given up (the commit's outcome is not affected)"
        logger.warning("\(message)")
        metrics.reportDelivered(target: request.target, delivered: false)
    }

    enum Attempt {
        case delivered
        /// A network error, a timeout, 429 or 5xx: worth another try.
        case retry(String)
        /// Any other 4xx (a bad token, an unknown repository or commit): another try would get the same answer.
        case permanent(String)
    }

    func sendOnce(_ request: ReportRequest) async -> Attempt {
        var http = HTTPClientRequest(url: request.url)
        http.method = .POST
        for (name, value) in request.headers.sorted(by: { $0.key < $1.key }) { http.headers.add(name: name, value: value) }
        http.body = .bytes(ByteBuffer(bytes: request.body))
        do {
            let response = try await client.execute(http, timeout: .milliseconds(Int64(settings.timeout / .milliseconds(1))))
            let body = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
            let code = Int(response.status.code)
            if (200..<300).contains(code) { return .delivered }
            let why = "HTTP \(code)" + (body.isEmpty ? "" : ": " + ReportRequests.truncated(body, to: 200))
            return code == 429 || code >= 500 || code == 408 ? .retry(why) : .permanent(why)
        } catch {
            return .retry("\(error)")
        }
    }

    /// A token or secret file's contents without surrounding whitespace.
    static func readSecret(_ path: String) -> Result<[UInt8], ReportDeliveryError> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(ReportDeliveryError(target: "", message: "cannot read the file"))
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return .failure(ReportDeliveryError(target: "", message: "the file is empty")) }
        guard !text.contains(where: \.isNewline) else {
            return .failure(ReportDeliveryError(target: "", message: "the file holds more than one line"))
        }
        return .success(Array(text.utf8))
    }
}

/// A report that could not be made into a request.
public struct ReportDeliveryError: Error, Sendable {
    public var target: String
    public var message: String
}

/// `scheme://host[:port]` of a URL, for logs: webhook URLs often carry their secret in the path or query.
func urlOrigin(_ url: String) -> String {
    guard let c = URLComponents(string: url), let scheme = c.scheme, let host = c.host else { return "the configured URL" }
    return "\(scheme)://\(host)\(c.port.map { ":\($0)" } ?? "")"
}
