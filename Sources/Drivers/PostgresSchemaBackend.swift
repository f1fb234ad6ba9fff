import Foundation
import Manifest
import Planning
import PostgresSchema
import Reconcile
import Schema

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
            return ObservedSchema(try await engine.status())
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
