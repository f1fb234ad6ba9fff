import Foundation
import GRDB
import Logging
import Manifest
import Testing
@testable import Schema

/// A fresh database file in its own temporary directory, with the engine and a second, plain connection
/// standing in for an application.
final class Scratch {
    let dir: URL
    let path: String
    let app: DatabaseQueue

    init(_ setup: String = "") throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("teal-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        path = dir.appendingPathComponent("app.db").path
        var config = Configuration()
        config.foreignKeysEnabled = false
        config.busyMode = .timeout(5)
        app = try DatabaseQueue(path: path, configuration: config)
        try app.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            if !setup.isEmpty { try db.execute(sql: setup) }
        }
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func engine(batchSize: Int = 1000) throws -> SchemaEngine {
        try SchemaEngine(path: path, options: SchemaEngineOptions(batchSize: batchSize, batchPause: 0), logger: Logger(label: "test"))
    }

    func exec(_ sql: String, _ arguments: StatementArguments = []) throws {
        try app.write { try $0.execute(sql: sql, arguments: arguments) }
    }

    func rows(_ sql: String) throws -> [[String?]] {
        try app.read { db in
            try Row.fetchAll(db, sql: sql).map { row in row.databaseValues.map { $0.isNull ? nil : String(describing: $0.storage.value!) } }
        }
    }

    func value(_ sql: String) throws -> String? { try rows(sql).first?.first ?? nil }

    func int(_ sql: String) throws -> Int { try app.read { try Int.fetchOne($0, sql: sql) ?? -1 } }

    func columns(_ table: String) throws -> [String] {
        try app.read { try String.fetchAll($0, sql: "SELECT name FROM pragma_table_info(?)", arguments: [table]) }
    }

    func notNull(_ table: String, _ column: String) throws -> Bool {
        try app.read { try Int.fetchOne($0, sql: "SELECT \"notnull\" FROM pragma_table_info(?) WHERE name = ?", arguments: [table, column]) == 1 }
    }

    func objects(like pattern: String) throws -> [String] {
        try app.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE name LIKE ? ORDER BY name", arguments: [pattern]) }
    }

    func integrity() throws -> String? { try value("PRAGMA integrity_check") }

    /// Every schema object but teal's own, as SQLite stores it: (type, name, table, sql).
    func schema() throws -> [[String?]] {
        try rows("""
            SELECT type, name, tbl_name, sql FROM sqlite_master
            WHERE name NOT LIKE '\\_teal\\_%' ESCAPE '\\' AND tbl_name NOT LIKE '\\_teal\\_%' ESCAPE '\\' ORDER BY type, name
            """)
    }

    /// Names of teal's objects (`_teal_...`, and triggers) other than its history tables.
    func machinery() throws -> [String] {
        try app.read { try String.fetchAll($0, sql: """
            SELECT name FROM sqlite_master WHERE (name LIKE '\\_teal\\_%' ESCAPE '\\' OR type = 'trigger')
            AND name NOT IN ('_teal_migrations', '_teal_migration_state', '_teal_backfill', '_teal_trim', '_teal_not_null') AND name NOT LIKE 'sqlite_autoindex%'
            ORDER BY name
            """) }
    }

    /// Expects the statement to fail, with `fragment` in SQLite's message when given.
    func refuses(_ sql: String, _ fragment: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try exec(sql)
            Issue.record("expected a refusal: \(sql)", sourceLocation: sourceLocation)
        } catch {
            if let fragment, !"\(error)".contains(fragment) {
                Issue.record("expected '\(fragment)' in: \(error)", sourceLocation: sourceLocation)
            }
        }
    }
}

func migration(_ name: String, _ operations: [Manifest.Operation], checksum: String? = nil) -> Migration {
    Migration(name: name, number: Int(name.prefix(4)) ?? 0, checksum: checksum ?? "sum-\(name)", operations: operations)
}

/// A column for test migrations; nullable unless told (the manifest's own default is pgroll's NOT NULL).
func column(_ name: String, _ type: String = "text", nullable: Bool = true, default: String? = nil, unique: Bool = false,
            primaryKey: Bool = false, check: String? = nil, references: ForeignKeyReference? = nil,
            generated: GeneratedColumn? = nil) -> Manifest.ColumnDefinition {
    Manifest.ColumnDefinition(name: name, type: type, nullable: nullable, default: `default`, unique: unique, primaryKey: primaryKey,
                              check: check.map { CheckConstraint(constraint: $0) }, references: references, generated: generated)
}

let usersSetup = """
    CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER DEFAULT 0);
    INSERT INTO users (name, age) VALUES ('Ada Lovelace', 36), ('Alan Turing', 41), ('Grace Hopper', 85), ('Cher', 77);
    """

let splitName = migration("0002_split_name", [
    .addColumn(AddColumn(table: "users", column: column("first_name"), up: "CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END")),
    .addColumn(AddColumn(table: "users", column: column("last_name"), up: "CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END")),
    .dropColumn(DropColumn(table: "users", column: "name", down: "trim(first_name || ' ' || last_name)")),
])
