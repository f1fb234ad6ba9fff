import Foundation
import Manifest
import Planning
import PostgresSchema
import Reconcile
import Runtime
import Schema
import Synchronization

/// Migrations on an SQLite app database, through the schema engine.
public struct SQLiteSchemaBackend: SchemaBackend {
    public let path: String
    public let options: SchemaEngineOptions

    /// The agent waits at most `busyTimeout` for another connection's write lock, then retries the step later
    /// with backoff rather than holding a pass (and its commit) on a locked database.
    public init(path: String, options: SchemaEngineOptions = SchemaEngineOptions(busyTimeout: 1)) {
        self.path = path
        self.options = options
    }

    public var description: String { path }

    public func observe() async throws -> ObservedSchema? {
        let path = path
        // Two stats tell whether the history read last time still holds; only a read goes to the thread pool.
        if let unchanged = SchemaHistoryCache.shared.unchanged(path) { return unchanged }
        return try await offThePool(throwing: { try SchemaHistoryCache.shared.schema(of: path) })
    }

    public func start(_ migration: Migration, progress: @escaping @Sendable (Int, Int) -> Void,
                      shouldStop: @escaping @Sendable () -> Bool) async throws {
        let engine = try engine()
        try await run { try engine.start(migration, progress: progress, shouldStop: shouldStop) }
    }

    public func complete(_ name: String) async throws {
        let engine = try engine()
        try await run { try engine.complete(name) }
    }

    public func rollback(_ name: String) async throws {
        let engine = try engine()
        try await run { try engine.rollback(name) }
    }

    private func engine() throws -> SchemaEngine {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        do {
            return try SchemaEngine(path: path, options: options)
        } catch let error as SchemaError {
            throw Self.failure(error)
        }
    }

    private func run(_ work: @escaping @Sendable () throws -> Void) async throws {
        do {
            try await offThePool(throwing: work)
        } catch let error as SchemaError {
            throw Self.failure(error)
        }
    }

    /// An interrupted backfill is not the commit's fault: transient, resumed or rolled back by the next pass.
    static func failure(_ error: SchemaError) -> ReconcileFailure {
        error.isTransient || error.isInterruption ? .transient("\(error)") : .permanent("\(error)")
    }
}

/// Picks a schema backend from an app's `database:` URL: SQLite files under the data dir or at an absolute
/// path, or a PostgreSQL database.
public struct SchemaBackendCatalog: SchemaBackends {
    public let paths: RuntimePaths

    public init(dataDir: String) { paths = RuntimePaths(dataDir: dataDir) }

    public func backend(for database: DatabaseLocation) throws -> any SchemaBackend {
        try backend(for: database, options: DatabaseOptions())
    }

    public func backend(for database: DatabaseLocation, options: DatabaseOptions) throws -> any SchemaBackend {
        if case .postgres(let url) = database {
            return try PostgresSchemaBackend(url: url, options: PostgresSchemaOptions(options))
        }
        guard let file = paths.databaseFile(database) else { throw ReconcileFailure.permanent("no schema backend for \(database)") }
        return SQLiteSchemaBackend(path: file)
    }

    public func colorEnvironment(for database: DatabaseLocation, shape: String) -> [String: String] {
        guard case .postgres(let url) = database else { return [:] }
        return PostgresSchemaBackend.colorEnvironment(url: url, shape: shape)
    }

    /// SQLite's refusals and a dry run on an in-memory database; for PostgreSQL, each migration planned over the
    /// tables the ones before it leave.
    public func validate(_ migrations: [Migration], for database: DatabaseLocation) -> [Diagnostic] {
        if case .postgres(let url) = database {
            let schema = (try? PostgresSettings(url: url, environment: [:]))?.schema ?? "public"
            return PostgresValidation.check(migrations, schema: schema)
        }
        return MigrationValidation.check(migrations)
    }
}

/// The migration history of SQLite app databases, read again only when the database file or its WAL changed
/// (size, modification time, inode), so an idle agent does not open every database each pass. A database that
/// does not exist is not created.
final class SchemaHistoryCache: Sendable {
    static let shared = SchemaHistoryCache()

    private struct Stamp: Equatable {
        var database: [Int64]
        var wal: [Int64]
    }

    private let entries = Mutex<[String: (Stamp, ObservedSchema)]>([:])

    private static func stamp(_ path: String) -> [Int64] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        return [Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec), Int64(info.st_ino)]
    }

    /// What `schema(of:)` would answer without opening the database: `.some(nil)` when there is no database
    /// file, the kept history when neither the file nor its WAL changed since it was read; nil when it must be read.
    func unchanged(_ path: String) -> ObservedSchema?? {
        let current = Stamp(database: Self.stamp(path), wal: Self.stamp(path + "-wal"))
        guard !current.database.isEmpty else { return .some(nil) }
        if let (stamp, schema) = entries.withLock({ $0[path] }), stamp == current { return .some(schema) }
        return nil
    }

    /// nil when there is no database file yet.
    func schema(of path: String) throws -> ObservedSchema? {
        let current = Stamp(database: Self.stamp(path), wal: Self.stamp(path + "-wal"))
        guard !current.database.isEmpty else { return nil }
        if let (stamp, schema) = entries.withLock({ $0[path] }), stamp == current { return schema }
        let status: SchemaStatus
        do {
            status = try SchemaEngine(path: path, options: SchemaEngineOptions(busyTimeout: 1)).status()
        } catch let error as SchemaError where error.isTransient {
            throw SQLiteSchemaBackend.failure(error)
        } catch {
            // Unreadable for good (not a database, say): observed as empty, so the migration step reports why.
            return nil
        }
        let schema = ObservedSchema(status)
        // Opening the database may itself touch the WAL: remember the stamp as it is now.
        let after = Stamp(database: Self.stamp(path), wal: Self.stamp(path + "-wal"))
        entries.withLock { $0[path] = (after, schema) }
        return schema
    }
}

extension ObservedSchema {
    /// The planner's view of the engine's history.
    init(_ status: SchemaStatus) {
        self.init(completed: status.migrations.filter { $0.state.isCompleted }
                      .map { Planning.AppliedMigration(name: $0.name, checksum: $0.checksum) },
                  inFlight: status.inFlight.map { Planning.AppliedMigration(name: $0.name, checksum: $0.checksum) },
                  inFlightBackfilling: status.inFlight?.state == .backfilling,
                  lastCompletedFinalBecause: "the database dropped the old shape's columns and tables at complete")
    }
}
