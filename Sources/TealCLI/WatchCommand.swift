import Agent
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Manifest
import Runtime
import ServiceLifecycle
import State

/// `teal watch`: the agent.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Watch the repository and reconcile continuously (the agent).",
        discussion: """
            Polls the branch tip every --interval (one ref read) and reconciles when it moves, when POST /hooks/git \
            arrives on the admin endpoint, and every --drift-interval to repair drift. Each reconciled commit gets \
            a git note under refs/notes/teal. SIGTERM finishes the current step and exits; colors and the router \
            keep running.
            """)

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption

    @Option(help: "How often to read the branch tip (ms, s, m).")
    var interval = "1s"

    @Option(help: "How often to compare with what runs even when nothing was committed.")
    var driftInterval = "5s"

    @Option(help: "HOST:PORT of the admin endpoint (GET /status, GET /metrics, POST /hooks/git); 'off' to disable.")
    var admin = "127.0.0.1:9400"

    @Option(help: "Shared secret for X-Hub-Signature-256 on POST /hooks/git (default: $TEAL_WEBHOOK_SECRET).")
    var webhookSecret: String?

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        guard let interval = DurationParser.parse(interval), interval > .zero,
              let drift = DurationParser.parse(driftInterval), drift > .zero else {
            throw ValidationError("--interval and --drift-interval are durations such as 500ms or 2s")
        }
        _ = try repo.open()
        var logger = Logger(label: "teal.watch")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let dataDir = data.path
        let lock: DataDirLock
        do { lock = try DataDirLock(dataDir: dataDir) } catch { throw CLIError("\(error)") }
        defer { withExtendedLifetime(lock) {} }
        let store = try StateStore(dataDir: dataDir)
        let reconciler = Reconciler(configuration: .init(repository: repo.repo, branch: repo.branch), dataDir: dataDir,
                                    store: store, logger: logger)
        let desiredBox = DesiredBox()
        let supervisor = ColorSupervisor(dataDir: dataDir, store: store, settings: { desiredBox.settings(app: $0, color: $1) }, logger: logger)
        let metrics = AgentMetrics()
        let commits = CommitGauge()
        let trigger = PassTrigger()
        let watch = WatchService(
            reconciler: reconciler, repository: repo.repo, branch: repo.branch, interval: interval, driftInterval: drift,
            trigger: trigger, supervisor: supervisor, logger: logger,
            onReport: { report, seconds in
                Task {
                    let desired = await reconciler.lastDesired
                    desiredBox.set(desired)
                    guard let record = report.record else { return }
                    metrics.reconciled(outcome: record.outcome.rawValue, seconds: seconds)
                    for app in desired?.apps.keys.sorted() ?? [] {
                        metrics.currentCommit(app: app, commit: record.commit, previous: commits.swap(app: app, commit: record.commit))
                    }
                }
            })

        let secret = webhookSecret ?? ProcessInfo.processInfo.environment["TEAL_WEBHOOK_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
        if admin == "off" {
            let group = ServiceGroup(services: [watch], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
            return
        }
        guard let address = AdminServer.Configuration.parse(admin, secret: secret) else {
            throw ValidationError("--admin must be HOST:PORT, e.g. 127.0.0.1:9400")
        }
        if !["127.0.0.1", "::1", "localhost"].contains(address.host) {
            logger.warning("the admin endpoint listens on \(address.host), not loopback\(secret == nil ? ", and POST /hooks/git has no secret" : "")")
        }
        let router = AdminServer.router(
            status: {
                let report = try await StatusCommand.report(dataDir: dataDir)
                for app in report.apps {
                    for color in app.colors {
                        metrics.colorHealth(app: app.name, color: color.color, healthy: color.healthy)
                        if let requests = color.requests { metrics.routerRequests(app: app.name, color: color.color, total: requests) }
                    }
                }
                return try StatusCommand.json(report)
            },
            metrics: metrics, webhookSecret: secret, trigger: { trigger.fire() })
        let app = Application(router: router, configuration: .init(address: .hostname(address.host, port: address.port)),
                              services: [watch], logger: logger)
        try await app.runService()
    }
}

/// The commit each app's metric currently names.
final class CommitGauge: Sendable {
    private let commits = Mutex<[String: String]>([:])

    /// Records `commit` for `app`, returning the one it replaces.
    func swap(app: String, commit: String) -> String? {
        commits.withLock { let old = $0[app]; $0[app] = commit; return old }
    }
}

import Synchronization
