import Foundation
import GRDB
import Manifest

/// The engine's bookkeeping tables, inside the app database so the history travels with the data.
enum History {
    static let migrations = "_teal_migrations"
    static let state = "_teal_migration_state"
    static let backfill = "_teal_backfill"

    static func create(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS "\(migrations)" (
                name TEXT PRIMARY KEY,
                number INTEGER NOT NULL,
                checksum TEXT NOT NULL,
                definition TEXT NOT NULL,
                state TEXT NOT NULL,
                started_at TEXT NOT NULL,
                completed_at TEXT,
                rolled_back_at TEXT
            );
            CREATE TABLE IF NOT EXISTS "\(state)" (
                migration TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT,
                PRIMARY KEY (migration, key)
            );
            CREATE TABLE IF NOT EXISTS "\(backfill)" (
                migration TEXT NOT NULL,
                table_name TEXT NOT NULL,
                assignments TEXT NOT NULL,
                last_rowid INTEGER NOT NULL,
                max_rowid INTEGER NOT NULL,
                done INTEGER NOT NULL,
                total INTEGER NOT NULL,
                PRIMARY KEY (migration, table_name)
            );
            """)
        try RowTrim.create(db)
        try NotNullRestore.create(db)
    }

    static let now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

    static func all(_ db: Database) throws -> [AppliedMigration] {
        guard try db.tableExists(migrations) else { return [] }
        return try Row.fetchAll(db, sql: "SELECT * FROM \"\(migrations)\" ORDER BY number, name").map(decode)
    }

    static func find(_ db: Database, _ name: String) throws -> AppliedMigration? {
        guard try db.tableExists(migrations) else { return nil }
        return try Row.fetchOne(db, sql: "SELECT * FROM \"\(migrations)\" WHERE name = ?", arguments: [name]).map(decode)
    }

    private static func decode(_ row: Row) throws -> AppliedMigration {
        let name: String = row["name"]
        let json: String = row["definition"]
        let definition: Migration
        do {
            definition = try JSONDecoder().decode(Migration.self, from: Data(json.utf8))
        } catch {
            throw SchemaError(migration: name, "the stored definition in \(migrations) cannot be read: \(error)")
        }
        guard let state = MigrationState(rawValue: row["state"]) else {
            throw SchemaError(migration: name, "unknown state '\(row["state"] as String? ?? "")' in \(migrations)")
        }
        return AppliedMigration(name: name, checksum: row["checksum"], state: state, definition: definition,
                                startedAt: date(row["started_at"]) ?? Date(timeIntervalSince1970: 0),
                                completedAt: date(row["completed_at"]), rolledBackAt: date(row["rolled_back_at"]))
    }

    /// How history timestamps are written and read (a value type: cheap to share, no formatter per call).
    static let timestamp = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    private static func date(_ text: String?) -> Date? {
        text.flatMap { try? timestamp.parse($0) }
    }

    static func encode(_ migration: Migration) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(migration), as: UTF8.self)
    }

    static func setState(_ db: Database, _ name: String, _ state: MigrationState) throws {
        let stamp = switch state {
        case .completed: ", completed_at = \(now)"
        case .rolledBack: ", rolled_back_at = \(now)"
        default: ""
        }
        try db.execute(sql: "UPDATE \"\(migrations)\" SET state = ?\(stamp) WHERE name = ?", arguments: [state.rawValue, name])
    }

    static func clearWorkingState(_ db: Database, _ name: String) throws {
        try db.execute(sql: "DELETE FROM \"\(state)\" WHERE migration = ?", arguments: [name])
        try db.execute(sql: "DELETE FROM \"\(backfill)\" WHERE migration = ?", arguments: [name])
    }
}

/// Operation notes in `_teal_migration_state`, scoped to one migration.
final class StoredOperationState: OperationStateStore {
    let db: Database
    let migration: String

    init(_ db: Database, migration: String) { self.db = db; self.migration = migration }

    func value(_ key: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM \"\(History.state)\" WHERE migration = ? AND key = ?", arguments: [migration, key])
    }

    func set(_ key: String, _ value: String?) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO \"\(History.state)\" (migration, key, value) VALUES (?, ?, ?)", arguments: [migration, key, value])
    }
}
