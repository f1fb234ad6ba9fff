import Foundation
import Manifest
import Reconcile
import Runtime
import State

/// Colors as detached OS processes: their own session, no inherited descriptors, output to a log file per
/// color. A handle is the pid and the kernel's start time, so a new agent adopts a color that still runs and
/// a recycled pid is never taken for it.
public struct ProcessColorRuntime: ColorRuntime {
    public static let runtime = "process"
    public let launcher: ColorLauncher
    /// A running color's log is rotated when it grows past this many bytes.
    public var logLimit: Int

    public init(dataDir: String, logLimit: Int = LogRotation.defaultLimit) {
        launcher = ColorLauncher(dataDir: dataDir)
        self.logLimit = logLimit
    }

    public func start(_ launch: ColorLaunch) async throws -> ColorRecord {
        let started = try launcher.start(app: launch.app, color: launch.color, spec: launch.spec, commit: launch.commit,
                                         folder: launch.folder, database: launch.database, databaseEnvironment: launch.databaseEnvironment)
        return ColorRecord(app: launch.app, color: launch.color, spec: launch.spec, specCommit: launch.commit,
                           handle: started.identity.handle, port: started.port, startedAt: Date(), health: launch.health)
    }

    public func logPosition(app: String, color: ColorName) -> LogPosition? {
        LogReader.position(launcher.paths.log(app: app, color: color)).map { LogPosition(inode: $0.inode, size: $0.size) }
    }

    /// A step that started the color on a new release wrote to a new file (the previous one moved aside): its
    /// range starts at 0. One rotated meanwhile (copied away, truncated) keeps only what followed the rotation.
    public func logRange(app: String, color: ColorName, since start: LogPosition?) -> StepLogRange? {
        let path = launcher.paths.log(app: app, color: color)
        guard let end = LogReader.position(path) else { return nil }
        let from = start.map { $0.inode == end.inode && $0.size <= end.size ? $0.size : 0 } ?? 0
        guard let bytes = LogReader.bytes(path, from: from, to: end.size) else { return nil }
        return StepLogRange(app: app, color: color.rawValue, inode: end.inode, from: from, to: end.size, hash: StepLogRange.hash(bytes))
    }

    public func isAlive(_ handle: ColorHandle) -> Bool { ProcessIdentity(handle)?.isAlive ?? false }

    public func inspect(_ handle: ColorHandle) -> ColorInspection {
        guard let identity = ProcessIdentity(handle) else { return ColorInspection(alive: false) }
        let alive = identity.isAlive
        return ColorInspection(alive: alive, pid: identity.pid, uptime: alive ? identity.uptime : nil)
    }

    public func stop(_ handle: ColorHandle, grace: Duration) async {
        await ProcessIdentity(handle)?.stop(grace: grace)
    }

    public func probe(_ record: ColorRecord, health: HealthCheck) async -> Bool {
        guard let port = record.port else { return false }
        return await HealthProbe.probe(port: port, health: health).passed
    }

    public func waitHealthy(_ record: ColorRecord, health: HealthCheck) async throws {
        guard let port = record.port else { throw RuntimeError("\(record.app) \(record.color) has no port") }
        try await HealthProbe.waitHealthy(port: port, process: record.identity, health: health,
                                          what: "\(record.app) \(record.color) (release \(record.spec.release))",
                                          logPath: launcher.paths.log(app: record.app, color: record.color))
    }

    public func maintain(_ record: ColorRecord) {
        LogRotation.rotateIfNeeded(launcher.paths.log(app: record.app, color: record.color), limit: logLimit)
    }
}

extension ProcessIdentity {
    /// The handle a color record stores.
    public var handle: ColorHandle { ColorHandle(runtime: ProcessColorRuntime.runtime, id: "\(pid):\(startTime)") }

    /// The process a handle names; nil for another runtime's handle.
    public init?(_ handle: ColorHandle) {
        guard handle.runtime == ProcessColorRuntime.runtime else { return nil }
        let parts = handle.id.split(separator: ":")
        guard parts.count == 2, let pid = Int32(parts[0]), let start = UInt64(parts[1]) else { return nil }
        self.init(pid: pid, startTime: start)
    }
}

extension ColorRecord {
    /// The process this record names, when it runs as one.
    public var identity: ProcessIdentity? { handle.flatMap(ProcessIdentity.init) }
    public var pid: Int32? { identity?.pid }
}
