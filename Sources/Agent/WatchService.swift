import Foundation
import Logging
import Reconcile
import ServiceLifecycle
import Synchronization

/// Asks the watch loop for a pass now (the webhook), without waiting for the next poll, and wakes the loop from
/// its sleep (for a pass, or to stop).
public final class PassTrigger: Sendable {
    private struct State {
        var pending = false
        var stopping = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    public init() {}

    /// A pass is wanted: the loop runs one as soon as it is awake.
    public func fire() { wake(pending: true) }

    /// Ends the loop's current sleep, and any later one, without asking for a pass (shutdown).
    func stop() { wake(pending: false, stopping: true) }

    private func wake(pending: Bool, stopping: Bool = false) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if pending { state.pending = true }
            if stopping { state.stopping = true }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// True once per fire.
    func take() -> Bool { state.withLock { let was = $0.pending; $0.pending = false; return was } }

    /// Sleeps until `deadline`, or less when fired, woken or cancelled. An idle agent wakes only when it has
    /// something to do, not on a fixed tick.
    func sleep(until deadline: ContinuousClock.Instant) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            group.addTask { await self.waitForWake() }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForWake() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.pending || state.stopping || Task.isCancelled { return true }
                    // One loop sleeps on a trigger; a second sleeper would take the first one's place.
                    precondition(state.waiter == nil, "one watch loop per trigger")
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.wake(pending: false)
        }
    }
}

/// Opens once; the watch loop waits on it so that nothing is reconciled before the admin endpoint is bound.
final class ReadyGate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    var isOpen: Bool { state.withLock { $0.open } }

    func open() { release(opening: true) }

    private func release(opening: Bool) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if opening { state.open = true }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once open, or at once when the task is cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.open || Task.isCancelled { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.release(opening: false)
        }
    }
}

/// `teal watch`'s loop: reads the branch tip every poll interval (one ref lookup) and runs a pass when it moved,
/// when the webhook fires, every drift interval, and after a transient failure once its backoff has passed.
/// Between passes the color supervisor restarts dead colors. On SIGTERM it finishes the current step and returns,
/// leaving colors and the router running.
struct WatchService: Service {
    let agent: TealAgent
    let ready: ReadyGate
    let trigger = PassTrigger()

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await loop()
        } onGracefulShutdown: { [agent, trigger] in
            agent.lock?.markStopping()
            trigger.stop()
        }
    }

    private func loop() async throws {
        await ready.wait()
        guard !Task.isCancelled, !Task.isShuttingDownGracefully else { return }
        let configuration = agent.configuration
        let logger = agent.logger
        let source = agent.drivers.source
        let clock = ContinuousClock()
        var lastTip: String?
        var nextPoll = clock.now
        var nextDrift = clock.now
        var nextSupervision = clock.now
        var retryAt: ContinuousClock.Instant?
        var backoff = configuration.retry
        logger.info("watching \(source.description) every \(configuration.pollInterval)")
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let now = clock.now
            let triggered = trigger.take()
            // A webhook (or POST /reconcile) means the remote moved just now: no earlier answer of its tip is reused.
            if triggered { await source.tipMayHaveMoved() }
            var due = triggered || now >= nextDrift || retryAt.map { now >= $0 } == true
            if now >= nextPoll || due {
                nextPoll = now + configuration.pollInterval
                if let tip = try? await source.tip(), tip != lastTip { due = true }
            }
            if due {
                nextDrift = clock.now + configuration.driftInterval
                let report = await agent.pipeline.pass()
                // After a transient failure the tip is not settled: the retry timer, not the poll, runs the next pass.
                lastTip = report.commit
                if let failure = report.retry {
                    let delay = backoff.next()
                    retryAt = clock.now + delay
                    logger.notice("retrying in \(delay): \(failure)")
                } else {
                    backoff.reset()
                    retryAt = nil
                    if let audit = report.audit, audit.outcome == .applied {
                        logger.info("serving \(configuration.branch)@sha1:\(audit.commit)")
                    }
                    // Superseded: a newer commit is there already; reconcile it now, not at the next poll.
                    if report.audit?.outcome == .superseded { nextPoll = clock.now }
                }
                continue
            }
            if now >= nextSupervision {
                nextSupervision = now + configuration.supervisionInterval
                let restarted = await agent.supervisor.checkOnce()
                if !restarted.isEmpty { logger.notice("restarted \(restarted.joined(separator: ", "))") }
            }
            var wake = min(nextPoll, nextDrift, nextSupervision)
            if let retryAt { wake = min(wake, retryAt) }
            if wake > clock.now { await trigger.sleep(until: wake) }
        }
        logger.info("stopping: colors and the router keep running")
    }
}
