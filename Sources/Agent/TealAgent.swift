import Drivers
import Foundation
import Hummingbird
import Logging
import Manifest
import Planning
import Runtime
import Reconcile
import ServiceLifecycle
import Signatures
import State

/// The agent: the reconcile pipeline over the real drivers, the color supervisor, the admin endpoint and the
/// watch loop, built from one `AgentConfiguration`. `teal apply` calls `reconcileOnce`, `teal watch` calls
/// `run`.
public final class TealAgent: Sendable {
    public let configuration: AgentConfiguration
    public let drivers: ReconcileDrivers
    public let store: StateStore
    public let pipeline: ReconcilePipeline
    public let supervisor: ColorSupervisor
    public let metrics: AgentMetrics
    /// The data dir's agent lock, when this agent holds it.
    public let lock: DataDirLock?
    let logger: Logger

    /// Builds an agent; `drivers` default to the local repository, SQLite, teal's router and OS processes.
    public init(configuration: AgentConfiguration, drivers: ReconcileDrivers? = nil, store: StateStore? = nil,
                lock: DataDirLock? = nil, logger: Logger = Logger(label: "teal.agent")) throws {
        self.configuration = configuration
        self.lock = lock
        let metrics = AgentMetrics()
        self.metrics = metrics
        var drivers = drivers ?? ReconcileDrivers.standard(repository: configuration.repository, branch: configuration.branch,
                                                           dataDir: configuration.dataDir, remote: configuration.remote,
                                                           routerCommand: configuration.routerCommand,
                                                           signatures: configuration.verify == nil ? nil : configuration.signatures,
                                                           metrics: metrics)
        if configuration.reports.isEnabled {
            drivers.reporter = HTTPOutcomeReporter(settings: configuration.reports, repository: configuration.repository,
                                                   branch: configuration.branch, metrics: metrics, logger: logger)
        }
        self.drivers = drivers
        let store = try store ?? StateStore(dataDir: configuration.dataDir)
        self.store = store
        self.logger = logger
        let pipeline = ReconcilePipeline(drivers: drivers, store: store,
                                         configuration: .init(host: configuration.host, allowRewrites: configuration.allowRewrites,
                                                               verify: configuration.verify,
                                                               agent: "\(configuration.host):\(configuration.dataDir)"),
                                         metrics: metrics, logger: logger)
        self.pipeline = pipeline
        supervisor = ColorSupervisor(drivers: drivers, store: store, settings: { app, color in
            guard let environment = await pipeline.lastDesired?.apps[app]?.environment, let spec = environment.colors[color] else {
                return nil
            }
            return ColorSupervisor.Settings(health: environment.health, database: environment.database, spec: spec)
        }, metrics: metrics, logger: logger)
    }

    /// Reconciles the branch tip until its reconcile ends: transient failures are retried with backoff (at most
    /// `applyAttempts` in a row), and a commit that arrives meanwhile is reconciled in turn.
    public func reconcileOnce(progress: @escaping @Sendable (PlannedStep) -> Void = { _ in }) async -> PassReport {
        var backoff = configuration.retry
        while true {
            let report = await pipeline.pass(progress: progress)
            if let failure = report.retry {
                guard backoff.failures + 1 < configuration.applyAttempts, !Task.isCancelled else { return await flushed(report) }
                let delay = backoff.next()
                logger.notice("retrying in \(delay): \(failure)")
                try? await Task.sleep(for: delay)
                continue
            }
            if report.audit?.outcome == .superseded { continue }
            return await flushed(report)
        }
    }

    /// The commit statuses and webhooks of this run go out (or are given up) before `teal apply` exits.
    private func flushed(_ report: PassReport) async -> PassReport {
        await drivers.reporter.flush(timeout: .seconds(30))
        return report
    }

    /// The status of what runs, with live probes (also `GET /status`).
    public func status() async throws -> StatusReport {
        try await StatusReport.gather(store: store, drivers: drivers, metrics: metrics)
    }

    /// The agent in the foreground until SIGTERM or SIGINT: the admin endpoint is bound first (an address that
    /// cannot be bound ends the agent before anything is reconciled), then the watch loop runs.
    public func run() async throws {
        let ready = ReadyGate()
        let watch = WatchService(agent: self, ready: ready)
        guard let admin = configuration.admin else {
            ready.open()
            try await ServiceGroup(services: [watch], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
            return
        }
        if !["127.0.0.1", "::1", "localhost"].contains(admin.host) {
            logger.warning("the admin endpoint listens on \(admin.host), not loopback\(admin.webhookSecret == nil ? ", and POST /hooks/git has no secret" : "")")
        }
        let dataDir = configuration.dataDir
        let handlers = AdminServer.Handlers(
            status: { [self] in try await status() }, metrics: metrics, trigger: { watch.trigger.fire() },
            events: { [store] app, after in try store.events(app: app, after: after, last: after == 0 ? 500 : nil) },
            logFile: { app, color in LogFiles(dataDir: dataDir).current(app: app, color: color) },
            stepLog: { [store] app, color, step in AdminServer.StepLog.read(store: store, dataDir: dataDir, app: app, color: color, step: step) })
        let router = AdminServer.router(handlers, webhookSecret: admin.webhookSecret)
        let addressFile = AdminServer.addressFile(dataDir: dataDir)
        let app = Application(router: router, configuration: .init(address: .hostname(admin.host, port: admin.port)),
                              services: [watch], onServerRunning: { channel in
                                  let port = channel.localAddress?.port ?? admin.port
                                  let host = admin.host.contains(":") ? "[\(admin.host)]" : admin.host
                                  try? "\(host):\(port)\n".write(toFile: addressFile, atomically: true, encoding: .utf8)
                                  ready.open()
                              }, logger: logger)
        do {
            try await app.runService()
        } catch where !ready.isOpen {
            throw AgentError("cannot listen on \(admin.host):\(admin.port) for the admin endpoint (\(error)); "
                + "choose another address with --admin HOST:PORT, or --admin off")
        }
    }
}

/// An agent that cannot run as configured.
public struct AgentError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension ReconcileDrivers {
    /// The drivers a host runs with: a local repository or a fetched mirror of a remote one, SQLite databases,
    /// teal's router, OS processes.
    /// With `signatures`, commit signatures are checked in the repository the source reads (a remote's mirror).
    public static func standard(repository: String, branch: String, dataDir: String, remote: RemoteSettings = RemoteSettings(),
                                routerCommand: [String]? = nil, signatures: SignaturePolicy? = nil,
                                metrics: any ReconcileMetrics = NoMetrics()) -> ReconcileDrivers {
        let source = source(repository: repository, branch: branch, dataDir: dataDir, remote: remote, metrics: metrics)
        let read = (source as? RemoteMirrorSource)?.path ?? repository
        return ReconcileDrivers(source: source, schemas: SchemaBackendCatalog(dataDir: dataDir),
                                traffic: RouterTrafficDriver(dataDir: dataDir, command: routerCommand),
                                runtime: ProcessColorRuntime(dataDir: dataDir),
                                verifier: signatures.map { RepositoryCommitVerifier(path: read, policy: $0) })
    }

    /// A local path is read in place; a URL is mirrored into the data dir.
    public static func source(repository: String, branch: String, dataDir: String, remote: RemoteSettings,
                              metrics: any ReconcileMetrics = NoMetrics()) -> any Source {
        RemoteURL.isRemote(repository)
            ? RemoteMirrorSource(url: repository, branch: branch, dataDir: dataDir, settings: remote, metrics: metrics)
            : LocalRepositorySource(path: repository, branch: branch, dataDir: dataDir)
    }
}
