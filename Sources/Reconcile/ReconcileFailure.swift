import Foundation

/// Why a pass could not finish, and whether that is the commit's fault.
///
/// A *transient* failure (a database busy or locked, the router not answering, a port not free yet, the agent's
/// own shutdown, a fetch that timed out) says nothing about the commit: the pass is retried with backoff and the
/// commit gets no outcome until it really ends. A *permanent* one (an invalid manifest, failing migration SQL,
/// a color that never gets healthy) ends the commit as `failed`.
public struct ReconcileFailure: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable { case transient, permanent }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func transient(_ message: String) -> ReconcileFailure { ReconcileFailure(.transient, message) }
    public static func permanent(_ message: String) -> ReconcileFailure { ReconcileFailure(.permanent, message) }

    public var isTransient: Bool { kind == .transient }
    public var description: String { message }

    /// The failure an error stands for. Errors say they are transient by conforming to `TransientError`;
    /// cancellation is the agent stopping; anything else is permanent.
    public static func classify(_ error: any Error) -> ReconcileFailure {
        switch error {
        case let failure as ReconcileFailure: failure
        case let error as any TransientError where error.isTransient: .transient("\(error)")
        case is CancellationError: .transient("the agent is stopping")
        default: .permanent("\(error)")
        }
    }
}

/// An error that can tell whether trying again later may succeed.
public protocol TransientError: Error {
    var isTransient: Bool { get }
}

/// Capped exponential backoff with jitter, for retrying transient failures.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    /// Failures in a row so far.
    public private(set) var failures = 0

    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The wait before the next attempt, counting one more failure.
    public mutating func next() -> Duration {
        failures += 1
        let base = min(initial * (1 << min(failures - 1, 16)), maximum)
        // Up to 20% less, so agents sharing a database do not retry in step.
        return base * Double.random(in: 0.8...1.0)
    }

    public mutating func reset() { failures = 0 }
}
