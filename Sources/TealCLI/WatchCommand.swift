import Agent
import ArgumentParser
import Foundation
import Manifest

/// `teal watch`: the agent.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Watch the repository and reconcile continuously (the agent).",
        discussion: """
            Polls the branch tip every --interval (one ref read) and reconciles when it moves, when POST /hooks/git \
            arrives on the admin endpoint (from GitHub, GitLab or Gitea, checked against --webhook-secret), and every --drift-interval to repair drift. Each reconciled commit gets \
            a git note under refs/notes/teal. Transient failures (a locked database, a router not answering) are \
            retried with backoff and never become a commit's outcome. The admin address is bound before anything \
            is reconciled. SIGTERM finishes the current step and exits; colors and the router keep running.
            """)

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption
    @OptionGroup var signatures: VerifyOptions
    @OptionGroup var reports: ReportOptions

    @Option(help: "How often to read the branch tip (ms, s, m).")
    var interval = "1s"

    @Option(help: "How often to compare with what runs even when nothing was committed.")
    var driftInterval = "5s"

    @Option(help: "HOST:PORT of the admin endpoint (GET /status, GET /metrics, POST /hooks/git); 'off' to disable.")
    var admin = "127.0.0.1:9400"

    @Flag(help: "Accept a branch tip that does not descend from the last applied commit (a force push).")
    var allowRewrites = false

    @Option(help: "Shared secret of POST /hooks/git: GitHub's X-Hub-Signature-256, GitLab's X-Gitlab-Token, Gitea's X-Gitea-Signature (default: $TEAL_WEBHOOK_SECRET).")
    var webhookSecret: String?

    @Option(help: "A file holding the shared secret of POST /hooks/git (instead of --webhook-secret).")
    var webhookSecretFile: String?

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        guard let interval = DurationParser.parse(interval), interval > .zero,
              let drift = DurationParser.parse(driftInterval), drift > .zero else {
            throw ValidationError("--interval and --drift-interval are durations such as 500ms or 2s")
        }
        var secret = webhookSecret ?? ProcessInfo.processInfo.environment["TEAL_WEBHOOK_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
        if let file = webhookSecretFile {
            guard webhookSecret == nil else { throw ValidationError("give --webhook-secret or --webhook-secret-file, not both") }
            guard let data = FileManager.default.contents(atPath: file),
                  case let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
                throw CLIError("--webhook-secret-file \(file): cannot read the file, or it is empty")
            }
            secret = text
        }
        var adminAddress: AdminServer.Configuration?
        if admin != "off" {
            guard let parsed = AdminServer.Configuration.parse(admin, secret: secret) else {
                throw ValidationError("--admin must be HOST:PORT, e.g. 127.0.0.1:9400, or off")
            }
            adminAddress = parsed
        }
        try repo.checkLocal()
        let lock: DataDirLock
        do { lock = try DataDirLock(dataDir: data.path) } catch { throw CLIError("\(error)") }
        let configuration = AgentConfiguration(repository: repo.path, branch: repo.branch, dataDir: data.path,
                                               pollInterval: interval, driftInterval: drift, admin: adminAddress,
                                               remote: repo.remote, allowRewrites: allowRewrites,
                                               verify: signatures.verify, signatures: signatures.policy,
                                               reports: try reports.settings(repository: repo.path))
        let agent = try TealAgent(configuration: configuration, lock: lock, logger: logger("teal.watch", level: .info))
        do {
            try await agent.run()
        } catch let error as AgentError {
            throw CLIError(error.description)
        }
    }
}
