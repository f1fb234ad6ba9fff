import Foundation
import Manifest
import State

/// What starting one color needs.
public struct ColorLaunch: Sendable {
    public var app: String
    public var color: ColorName
    public var spec: ColorSpec
    /// The commit that set the spec; the working copy is `apps/<app>/` at that commit.
    public var commit: String
    public var folder: String
    public var database: DatabaseLocation
    /// Set over the color's environment after everything else: how it reaches its shape of the database.
    public var databaseEnvironment: [String: String]
    public var health: HealthCheck

    public init(app: String, color: ColorName, spec: ColorSpec, commit: String, folder: String, database: DatabaseLocation,
                databaseEnvironment: [String: String] = [:], health: HealthCheck) {
        self.databaseEnvironment = databaseEnvironment
        self.app = app
        self.color = color
        self.spec = spec
        self.commit = commit
        self.folder = folder
        self.database = database
        self.health = health
    }
}

/// A running color as its runtime describes it.
public struct ColorInspection: Sendable, Hashable {
    public var alive: Bool
    public var pid: Int32?
    public var uptime: Duration?

    public init(alive: Bool, pid: Int32? = nil, uptime: Duration? = nil) {
        self.alive = alive
        self.pid = pid
        self.uptime = uptime
    }
}

/// Where colors run: start one, tell whether a stored handle still names it (adoption), describe, probe and
/// stop it. Today detached OS processes.
public protocol ColorRuntime: Sendable {
    /// Starts a color and returns its record (not yet saved, not yet healthy).
    func start(_ launch: ColorLaunch) async throws -> ColorRecord
    /// The handle still names the instance that was started (so a new agent adopts it without a restart).
    func isAlive(_ handle: ColorHandle) -> Bool
    func inspect(_ handle: ColorHandle) -> ColorInspection
    /// Stops the instance: a polite signal, then a hard one once `grace` passed. Returns once it is gone.
    func stop(_ handle: ColorHandle, grace: Duration) async
    /// One health probe.
    func probe(_ record: ColorRecord, health: HealthCheck) async -> Bool
    /// Probes until the color is healthy (`healthy_after` passes in a row); throws once `start_timeout` passed
    /// or the instance died.
    func waitHealthy(_ record: ColorRecord, health: HealthCheck) async throws
    /// Housekeeping for a running color between passes (log rotation).
    func maintain(_ record: ColorRecord)
    /// Where the color's current log file stands, nil when the runtime keeps no log file for it.
    func logPosition(app: String, color: ColorName) -> LogPosition?
    /// The range of the color's log written since `start` (taken with `logPosition` before a step ran), nil
    /// when there is no log file.
    func logRange(app: String, color: ColorName, since start: LogPosition?) -> StepLogRange?
}

extension ColorRuntime {
    public func logPosition(app: String, color: ColorName) -> LogPosition? { nil }
    public func logRange(app: String, color: ColorName, since start: LogPosition?) -> StepLogRange? { nil }
}
