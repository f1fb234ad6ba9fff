import Foundation
import Git
import Logging
import Manifest
import Runtime
import ServiceLifecycle
import Synchronization

/// The desired state the supervisor restarts colors with, shared with the watch loop.
public final class DesiredBox: Sendable {
    private let value = Mutex<DesiredState?>(nil)

    public init() {}

    public func set(_ desired: DesiredState?) { value.withLock { $0 = desired } }

    /// What restarting one color needs: its app's health check and database and its desired spec; nil when not desired.
    public func settings(app: String, color: ColorName) -> ColorSupervisor.Settings? {
        value.withLock { desired in
            guard let environment = desired?.apps[app]?.environment, let spec = environment.colors[color] else { return nil }
            return ColorSupervisor.Settings(health: environment.health, database: environment.database, spec: spec)
        }
    }
}

/// Asks the watch loop for a pass now (the webhook), without waiting for the next poll.
public final class PassTrigger: Sendable {
    private let pending = Mutex(false)

    public init() {}

    public func fire() { pending.withLock { $0 = true } }

    /// True once per fire.
    func take() -> Bool { pending.withLock { let was = $0; $0 = false; return was } }
}

/// `teal watch`: polls the branch tip (one ref read), reconciles when it moves, when the
/// webhook fires, or every `driftInterval` to notice drift. On SIGTERM it finishes the current
/// step and returns, leaving colors and the router running.
public struct WatchService: Service {
    public var reconciler: Reconciler
    public var repository: String
    public var branch: String
    public var interval: Duration
    public var driftInterval: Duration
    public var trigger: PassTrigger
    /// Restarts colors that died, between passes.
    public var supervisor: ColorSupervisor?
    /// How often the supervisor looks for dead colors (a /proc read per color and a state-store read).
    public var supervisionInterval: Duration = .seconds(1)
    public var logger: Logger
    /// Called after every pass.
    public var onReport: @Sendable (Reconciler.Report, Double) -> Void

    public init(reconciler: Reconciler, repository: String, branch: String, interval: Duration, driftInterval: Duration,
                trigger: PassTrigger, supervisor: ColorSupervisor? = nil, logger: Logger, onReport: @escaping @Sendable (Reconciler.Report, Double) -> Void = { _, _ in }) {
        self.reconciler = reconciler
        self.repository = repository
        self.branch = branch
        self.interval = interval
        self.driftInterval = driftInterval
        self.trigger = trigger
        self.supervisor = supervisor
        self.logger = logger
        self.onReport = onReport
    }

    /// The branch tip, read with one ref lookup.
    static func tip(repository: String, branch: String) -> String? {
        (try? Repository(path: repository).branchTip(branch))??.hex
    }

    public func run() async throws {
        let clock = ContinuousClock()
        var lastTip: String?
        var nextPoll = clock.now
        var nextDrift = clock.now
        var nextSupervision = clock.now
        var handle: Repository?
        let tick = min(interval, .milliseconds(50))
        logger.info("watching \(repository) branch \(branch) every \(interval)")
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let now = clock.now
            let triggered = trigger.take()
            var due = triggered || now >= nextDrift
            if now >= nextPoll || triggered {
                nextPoll = now + interval
                // One handle for the whole loop: a ref lookup reads the ref from disk each time.
                if handle == nil { handle = try? Repository(path: repository) }
                let tip = (try? handle?.branchTip(branch))??.hex
                if tip != lastTip { due = true }
            }
            if due {
                nextDrift = clock.now + driftInterval
                let started = clock.now
                do {
                    let repo = repository, branch = branch
                    let reconciler = reconciler
                    let report = try await reconciler.pass {
                        if Task.isShuttingDownGracefully { return .shutdown }
                        guard let tip = Self.tip(repository: repo, branch: branch) else { return nil }
                        return tip != (await reconciler.currentCommit) ? .newCommit : nil
                    }
                    lastTip = report.commit
                    let elapsed = started.duration(to: clock.now)
                    onReport(report, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                } catch {
                    logger.error("reconcile pass failed: \(error)")
                }
                continue
            }
            if let supervisor, now >= nextSupervision {
                nextSupervision = now + supervisionInterval
                let restarted = await supervisor.checkOnce()
                if !restarted.isEmpty { logger.notice("restarted \(restarted.joined(separator: ", "))") }
            }
            try? await Task.sleep(for: tick)
        }
        logger.info("stopping: colors and the router keep running")
    }
}
