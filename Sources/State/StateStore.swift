import Foundation
import GRDB
import Manifest
import Planning
import Synchronization

/// teal's own SQLite database (`<data-dir>/state.db`, WAL): what teal knows is running, the
/// reconcile journal and each commit's outcome. It has its own schema versions (GRDB migrations).
public final class StateStore: Sendable {
    public let dataDir: String
    let db: DatabaseQueue

    /// Opens (creating if needed) the store in `dataDir`.
    public init(dataDir: String) throws {
        self.dataDir = dataDir
        // Owner-only: the data dir holds the router's admin socket, logs and materialised apps.
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        db = try DatabaseQueue(path: Self.path(dataDir), configuration: Self.configuration)
        try Self.migrator.migrate(db)
    }

    /// Opens the store of an existing data dir for a command that only reads: nothing is created. nil when the
    /// data dir has no store yet.
    public init?(existingDataDir dataDir: String) throws {
        guard FileManager.default.fileExists(atPath: Self.path(dataDir)) else { return nil }
        self.dataDir = dataDir
        var configuration = Self.configuration
        configuration.readonly = true
        db = try DatabaseQueue(path: Self.path(dataDir), configuration: configuration)
        guard try db.read({ try Self.migrator.hasCompletedMigrations($0) }) else {
            throw StateStoreError("the state store in \(dataDir) was written by another version of teal; run teal apply or watch once to upgrade it")
        }
    }

    /// A store that lives in memory only (pure tests of the reconcile pipeline).
    public static func inMemory() throws -> StateStore { try StateStore(memory: ()) }

    private init(memory: Void) throws {
        dataDir = ""
        db = try DatabaseQueue()
        try Self.migrator.migrate(db)
    }

    private static func path(_ dataDir: String) -> String { (dataDir as NSString).appendingPathComponent("state.db") }

    private static var configuration: Configuration {
        var config = Configuration()
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
        }
        return config
    }

    /// The store's own schema history. Append new versions; never edit a shipped one.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE colors (
                    app TEXT NOT NULL, color TEXT NOT NULL,
                    spec TEXT NOT NULL, spec_commit TEXT NOT NULL,
                    pid INTEGER, process_start_time INTEGER, port INTEGER,
                    started_at REAL NOT NULL,
                    PRIMARY KEY (app, color));
                CREATE TABLE routes (
                    app TEXT PRIMARY KEY, route TEXT NOT NULL, listen TEXT, updated_at REAL NOT NULL);
                CREATE TABLE schema_state (
                    app TEXT PRIMARY KEY, database TEXT NOT NULL, schema TEXT NOT NULL, updated_at REAL NOT NULL);
                CREATE TABLE reconciles (
                    commit_id TEXT PRIMARY KEY, outcome TEXT NOT NULL, detail TEXT NOT NULL,
                    started_at REAL NOT NULL, finished_at REAL);
                CREATE TABLE journal (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    commit_id TEXT NOT NULL, position INTEGER NOT NULL,
                    step TEXT NOT NULL, reason TEXT NOT NULL,
                    status TEXT NOT NULL, error TEXT,
                    started_at REAL, finished_at REAL);
                CREATE INDEX journal_status ON journal(status);
                """)
        }
        m.registerMigration("v2") { db in
            try db.execute(sql: "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        }
        m.registerMigration("v3") { db in
            // A color's process is named by an opaque handle its runtime understands (for OS processes, pid and
            // kernel start time), and the color keeps the health check it was started with.
            try db.execute(sql: """
                ALTER TABLE colors ADD COLUMN handle TEXT;
                ALTER TABLE colors ADD COLUMN health TEXT;
                UPDATE colors SET handle = json_object('runtime', 'process', 'id', pid || ':' || process_start_time)
                    WHERE pid IS NOT NULL AND process_start_time IS NOT NULL;
                ALTER TABLE colors DROP COLUMN pid;
                ALTER TABLE colors DROP COLUMN process_start_time;
                """)
        }
        registerOperations(&m)
        registerStepLogs(&m)
        return m
    }

    /// A small named value (for example the last reconciled commit).
    public func meta(_ key: String) throws -> String? {
        try db.read { try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    public func setMeta(_ key: String, _ value: String) throws {
        try db.write { try $0.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [key, value]) }
    }

    /// The store's schema version names applied so far.
    public func appliedVersions() throws -> [String] {
        try db.read { try Self.migrator.appliedMigrations($0) }
    }
}

/// What names a running color to the runtime that started it; opaque to everything else. For an OS process it
/// is the pid and the kernel's start time, so a recycled pid is never taken for the color.
public struct ColorHandle: Codable, Hashable, Sendable, CustomStringConvertible {
    /// Which runtime understands `id` (`process`).
    public var runtime: String
    public var id: String

    public init(runtime: String, id: String) {
        self.runtime = runtime
        self.id = id
    }

    public var description: String { "\(runtime):\(id)" }
}

/// A color teal started.
public struct ColorRecord: Codable, Hashable, Sendable {
    public var app: String
    public var color: ColorName
    public var spec: ColorSpec
    public var specCommit: String
    /// nil when the color was recorded without a running instance.
    public var handle: ColorHandle?
    public var port: Int?
    public var startedAt: Date
    /// The health check it was started with (status probes it without reading the repository).
    public var health: HealthCheck?

    public init(app: String, color: ColorName, spec: ColorSpec, specCommit: String, handle: ColorHandle?, port: Int?,
                startedAt: Date = Date(), health: HealthCheck? = nil) {
        self.app = app
        self.color = color
        self.spec = spec
        self.specCommit = specCommit
        self.handle = handle
        self.port = port
        self.startedAt = startedAt
        self.health = health
    }
}

/// An error of the state store itself.
public struct StateStoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// How one commit's reconcile ended.
public enum Outcome: String, Codable, Sendable, CaseIterable {
    case applied, failed, refused, superseded
    /// A new tip that changes nothing under `apps/` since the last applied commit: recorded, not reconciled.
    case noop
}

/// A journaled step.
public struct JournalEntry: Codable, Hashable, Sendable {
    public enum Status: String, Codable, Sendable { case pending, running, done, failed, superseded }
    public var id: Int64
    public var commit: String
    public var position: Int
    public var step: PlannedStep
    public var status: Status
    public var error: String?
    /// The range of a color's log the step wrote, when it started, waited for or stopped a color.
    public var log: StepLogRange?
}

private let encoder: JSONEncoder = {
    let e = JSONEncoder()
    e.outputFormatting = .sortedKeys
    return e
}()

private func json<T: Encodable>(_ value: T) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
private func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T { try JSONDecoder().decode(type, from: Data(text.utf8)) }

/// JSON columns the agent reads again and again unchanged (every color record each supervisor second, routes
/// and schema states each drift pass), decoded once per distinct text: decoding is a pure function of the text,
/// so a hit is exactly what decoding would give.
private final class DecodedColumns: Sendable {
    static let shared = DecodedColumns()

    private struct Key: Hashable {
        var type: ObjectIdentifier
        var text: String
    }

    /// Bounded: emptied when full (a few hundred distinct texts for a large repository).
    private static let capacity = 4096
    private let entries = Mutex<[Key: any Sendable]>([:])

    func decode<T: Decodable & Sendable>(_ type: T.Type, _ text: String) throws -> T {
        let key = Key(type: ObjectIdentifier(type), text: text)
        if let hit = entries.withLock({ $0[key] }) as? T { return hit }
        let value = try JSONDecoder().decode(type, from: Data(text.utf8))
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = value
        }
        return value
    }
}

private func decodeColumn<T: Decodable & Sendable>(_ type: T.Type, _ text: String) throws -> T {
    try DecodedColumns.shared.decode(type, text)
}

extension StateStore {
    // MARK: Colors

    public func saveColor(_ r: ColorRecord) throws {
        try db.write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO colors (app, color, spec, spec_commit, handle, port, started_at, health)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [r.app, r.color.rawValue, try json(r.spec), r.specCommit, try r.handle.map(json), r.port,
                                 r.startedAt.timeIntervalSince1970, try r.health.map(json)])
        }
    }

    public func removeColor(app: String, color: ColorName) throws {
        try db.write { try $0.execute(sql: "DELETE FROM colors WHERE app = ? AND color = ?", arguments: [app, color.rawValue]) }
    }

    public func colors(app: String? = nil) throws -> [ColorRecord] {
        try db.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM colors WHERE ?1 IS NULL OR app = ?1 ORDER BY app, color", arguments: [app])
            return try rows.map { row in
                ColorRecord(app: row["app"], color: ColorName(rawValue: row["color"]) ?? .blue, spec: try decodeColumn(ColorSpec.self, row["spec"]),
                            specCommit: row["spec_commit"], handle: try (row["handle"] as String?).map { try decodeColumn(ColorHandle.self, $0) },
                            port: row["port"], startedAt: Date(timeIntervalSince1970: row["started_at"]),
                            health: try (row["health"] as String?).map { try decodeColumn(HealthCheck.self, $0) })
            }
        }
    }

    // MARK: Routes

    public func saveRoute(app: String, route: Route, listen: ListenAddress?) throws {
        try db.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO routes (app, route, listen, updated_at) VALUES (?, ?, ?, ?)",
                           arguments: [app, try json(route), listen?.description, Date().timeIntervalSince1970])
        }
    }

    public func removeRoute(app: String) throws {
        try db.write { try $0.execute(sql: "DELETE FROM routes WHERE app = ?", arguments: [app]) }
    }

    /// Every app's route as teal last set it.
    public func routes() throws -> [String: (route: Route, listen: ListenAddress?)] {
        try db.read { db in
            var result: [String: (Route, ListenAddress?)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM routes") {
                result[row["app"]] = (try decodeColumn(Route.self, row["route"]), (row["listen"] as String?).flatMap(ListenAddress.parse))
            }
            return result
        }
    }

    // MARK: Schema

    /// The last migration history teal read from an app's database.
    public func saveSchema(app: String, database: String, schema: ObservedSchema) throws {
        try db.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO schema_state (app, database, schema, updated_at) VALUES (?, ?, ?, ?)",
                           arguments: [app, database, try json(schema), Date().timeIntervalSince1970])
        }
    }

    public func schemas() throws -> [String: ObservedSchema] {
        try db.read { db in
            var result: [String: ObservedSchema] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT app, schema FROM schema_state") {
                result[row["app"]] = try decodeColumn(ObservedSchema.self, row["schema"])
            }
            return result
        }
    }

    /// The observed state as recorded; live probes (process, health, router) refine it.
    public func recordedState() throws -> ObservedState { try recordedState(colors: colors()) }

    /// The observed state as recorded, from color records the caller has just read (so they are read once).
    public func recordedState(colors: [ColorRecord]) throws -> ObservedState {
        var state = ObservedState()
        let schemas = try schemas()
        let routes = try routes()
        for app in Set(schemas.keys).union(routes.keys).union(colors.map(\.app)) {
            var observed = ObservedApp(route: routes[app]?.route ?? .none, schema: schemas[app] ?? ObservedSchema())
            for c in colors where c.app == app {
                observed.colors[c.color] = ObservedColor(spec: c.spec, specCommit: c.specCommit, running: c.handle != nil, healthy: c.handle != nil)
            }
            state.apps[app] = observed
        }
        return state
    }

    // MARK: Journal

    /// Journals a plan's steps as pending, returning their ids in order.
    @discardableResult
    public func journal(commit: String, steps: [PlannedStep]) throws -> [Int64] {
        try db.write { db in
            try steps.enumerated().map { index, step in
                try db.execute(sql: "INSERT INTO journal (commit_id, position, step, reason, status) VALUES (?, ?, ?, ?, 'pending')",
                               arguments: [commit, index, try json(step.step), step.reason])
                return db.lastInsertedRowID
            }
        }
    }

    public func markStep(_ id: Int64, _ status: JournalEntry.Status, error: String? = nil) throws {
        let now = Date().timeIntervalSince1970
        try db.write { db in
            switch status {
            case .running:
                try db.execute(sql: "UPDATE journal SET status = 'running', started_at = ? WHERE id = ?", arguments: [now, id])
            default:
                try db.execute(sql: "UPDATE journal SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                               arguments: [status.rawValue, error, now, id])
            }
        }
    }

    /// Steps not finished yet (pending or interrupted while running), oldest first.
    public func unfinishedSteps() throws -> [JournalEntry] {
        try entries(where: "status IN ('pending', 'running')")
    }

    public func journalEntries(commit: String) throws -> [JournalEntry] {
        try entries(where: "commit_id = ?", [commit])
    }

    private func entries(where clause: String, _ arguments: StatementArguments = []) throws -> [JournalEntry] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM journal WHERE \(clause) ORDER BY id", arguments: arguments).map { row in
                JournalEntry(id: row["id"], commit: row["commit_id"], position: row["position"],
                             step: PlannedStep(try decode(Step.self, row["step"]), reason: row["reason"]),
                             status: JournalEntry.Status(rawValue: row["status"]) ?? .pending, error: row["error"],
                             log: (row["log_range"] as String?).flatMap { try? decode(StepLogRange.self, $0) })
            }
        }
    }

    // MARK: Outcomes

    /// Records how a commit's reconcile ended (its audit record, with the note text as written to git).
    public func record(_ audit: AuditRecord) throws {
        try db.write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO reconciles (commit_id, outcome, detail, started_at, finished_at) VALUES (?, ?, ?, ?, ?)
                """, arguments: [audit.commit, audit.outcome.rawValue, audit.note, audit.startedAt.timeIntervalSince1970,
                                 audit.finishedAt.timeIntervalSince1970])
        }
    }

    /// How a commit's reconcile ended, nil when it has not ended yet.
    public func outcome(commit: String) throws -> Outcome? {
        try db.read { db in
            try String.fetchOne(db, sql: "SELECT outcome FROM reconciles WHERE commit_id = ?", arguments: [commit])
                .map { Outcome(rawValue: $0) ?? .failed }
        }
    }

    /// The note text recorded for a commit.
    public func auditNote(commit: String) throws -> String? {
        try db.read { try String.fetchOne($0, sql: "SELECT detail FROM reconciles WHERE commit_id = ?", arguments: [commit]) }
    }
}
