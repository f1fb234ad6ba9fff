import Foundation
import Manifest
import Testing
import TestSupport
@testable import PostgresSchema
@testable import Schema

/// A migration parsed from YAML exactly as teal reads a file.
func pgMigration(_ name: String, _ yaml: String) throws -> Migration {
    switch MigrationParser.parse(Array(yaml.utf8), fileName: "\(name).yaml", path: "apps/shop/schema/\(name).yaml", checksum: "c-\(name)-\(yaml.hashValue)") {
    case .success(let m): return m
    case .failure(let e): throw e
    }
}

/// One database of the shared cluster, with an engine and SQL in either shape.
struct PGScratch {
    let cluster: PostgresCluster
    let database: String
    let engine: PostgresSchemaEngine

    init(batchSize: Int = 1000, options: PostgresSchemaOptions? = nil) throws {
        cluster = try PostgresCluster.get()
        database = try cluster.createDatabase()
        let settings = try PostgresSettings(url: cluster.url(database), environment: ["PGPASSFILE": cluster.passFile])
        engine = PostgresSchemaEngine(settings: settings, options: options ?? PostgresSchemaOptions(batchSize: batchSize))
    }

    /// SQL on the base tables, as an admin session (the old shape's writer, when a migration is in flight).
    @discardableResult
    func sql(_ text: String) throws -> String { try cluster.psql(database, text) }

    /// SQL as a color written for `migration` connects: its version schema alone on the search_path, its shape set.
    @discardableResult
    func sql(_ text: String, as migration: String) throws -> String {
        try cluster.psql(database, text, options: "-c search_path=\(engine.versionSchema(for: migration)) -c teal.shape=\(migration)")
    }

    func rows(_ text: String, as migration: String? = nil) throws -> [String] {
        let out = try migration.map { try sql(text, as: $0) } ?? sql(text)
        return out.isEmpty ? [] : out.split(separator: "\n").map(String.init)
    }
}

/// True when PostgreSQL can be used here; otherwise the test records why and stops.
func postgresAvailable() -> Bool {
    switch PostgresCluster.shared {
    case .success: return true
    case .failure(let e):
        Issue.record("PostgreSQL is needed for this test: \(e)")
        return false
    }
}
