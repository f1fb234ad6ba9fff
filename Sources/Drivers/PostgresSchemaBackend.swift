import Foundation
import Logging
import Manifest
import Planning
import PostgresSchema
import Reconcile
import Schema
import Synchronization

/// Migrations on a PostgreSQL app database, through the PostgreSQL schema engine. The database's password comes
/// from PGPASSWORD or a password file (PGPASSFILE, ~/.pgpass) in the agent's environment, never from git.
public struct PostgresSchemaBackend: SchemaBackend {
    public let engine: PostgresSchemaEngine

    public init(url: String, options: PostgresSchemaOptions = PostgresSchemaOptions(),
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        do {
            engine = PostgresSchemaEngine(settings: try PostgresSettings(url: url, environment: environment), options: options)
        } catch let error as PostgresSettingsError {
            throw ReconcileFailure.permanent(error.description)
        }
    }

    public var description: String { engine.settings.description }

    public func observe() async throws -> ObservedSchema? {
        do {
            let (status, blocker) = try await engine.observe()
            var observed = ObservedSchema(status)
            observed.lastCompletedReopenable = blocker == nil
            observed.lastCompletedReopening = status.lastCompleted?.state == .reopening
            observed.lastCompletedFinalBecause = blocker
            return observed
        } catch let error as SchemaError {
            throw SQLiteSchemaBackend.failure(error)
        }
    }

    public func start(_ migration: Migration, progress: @escaping @Sendable (Int, Int) -> Void,
                      shouldStop: @escaping @Sendable () -> Bool) async throws {
        try await run { try await engine.start(migration, progress: progress, shouldStop: shouldStop) }
    }

    public func complete(_ name: String) async throws {
        try await run { try await engine.complete(name) }
    }

    public func rollback(_ name: String) async throws {
        try await run { try await engine.rollback(name) }
    }

    public func reopen(_ name: String, progress: @escaping @Sendable (Int, Int) -> Void,
                       shouldStop: @escaping @Sendable () -> Bool) async throws {
        try await run { try await engine.reopen(name, progress: progress, shouldStop: shouldStop) }
    }

    /// Purges what is past the retention window and refreshes the version schemas' grants, at most once per
    /// `PurgeSchedule.interval` per database (start and complete do both every time); failures are logged and
    /// tried again at the next slot.
    public func maintain() async {
        let key = "\(engine.settings.description) \(engine.schema)"
        guard PurgeSchedule.shared.claim(key) else { return }
        let logger = Logger(label: "teal.schema.postgres")
        do {
            try await engine.purge()
        } catch {
            logger.warning("purging what completed migrations put aside failed; trying again later",
                           metadata: ["database": "\(description)", "error": "\(error)"])
        }
        do {
            try await engine.refreshGrants()
        } catch {
            logger.warning("bringing the version schemas' grants in line failed; trying again later",
                           metadata: ["database": "\(description)", "error": "\(error)"])
        }
    }

    private func run(_ work: () async throws -> Void) async throws {
        do {
            try await work()
        } catch let error as SchemaError {
            throw SQLiteSchemaBackend.failure(error)
        }
    }

    /// A color's `DATABASE_URL` selects its migration's version schema; libpq finds the password in the same
    /// password file as the agent (PGPASSFILE is passed on when set).
    static func colorEnvironment(url: String, shape: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        guard let settings = try? PostgresSettings(url: url, environment: environment) else { return [:] }
        var env = ["DATABASE_URL": settings.colorURL(shape: shape)]
        if let file = environment["PGPASSFILE"] { env["PGPASSFILE"] = file }
        return env
    }
}

/// When each PostgreSQL database last had its housekeeping, so that an agent passing every second asks each one
/// at most once a minute (start and complete do it anyway).
final class PurgeSchedule: Sendable {
    static let shared = PurgeSchedule()
    static let interval: TimeInterval = 60

    private let last = Mutex<[String: Date]>([:])

    /// True (and the slot taken) when `key` was not asked within `interval`.
    func claim(_ key: String, now: Date = Date()) -> Bool {
        last.withLock { last in
            if let at = last[key], now.timeIntervalSince(at) < Self.interval { return false }
            last[key] = now
            return true
        }
    }
}
