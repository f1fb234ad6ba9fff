import Foundation
import GRDB

/// Something the agent did or saw, with its time: a step, an outcome, a restart, a drift repair, a health change,
/// a suspension. `teal events` and the admin endpoint's `GET /events` show them.
public struct AgentEvent: Codable, Hashable, Sendable {
    public var id: Int64
    public var at: Date
    /// nil for what concerns the agent as a whole.
    public var app: String?
    public var color: String?
    public var commit: String?
    /// `step`, `step-failed`, `outcome`, `drift-repair`, `restart`, `died`, `crashloop`, `health`, `suspend`, `resume`,
    /// `retry`, `held`.
    public var kind: String
    public var message: String

    public init(id: Int64 = 0, at: Date = Date(), app: String? = nil, color: String? = nil, commit: String? = nil,
                kind: String, message: String) {
        self.id = id
        self.at = at
        self.app = app
        self.color = color
        self.commit = commit
        self.kind = kind
        self.message = message
    }

    /// One JSON object on one line (the JSON-lines form).
    public func jsonLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.dateEncodingStrategy = .iso8601
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }
}

/// Reconciling held back for one app (or, with `app == nil`, for all), as `teal suspend` recorded it.
public struct Suspension: Codable, Hashable, Sendable {
    /// nil: every app.
    public var app: String?
    /// Drift of what already runs is still repaired (dead colors restarted, routes put back).
    public var repairDrift: Bool
    public var at: Date
    public var by: String

    public init(app: String?, repairDrift: Bool, at: Date = Date(), by: String) {
        self.app = app
        self.repairDrift = repairDrift
        self.at = at
        self.by = by
    }
}

/// The suspensions in force, answering for one app at a time.
public struct Suspensions: Sendable, Hashable {
    public var all: [Suspension]

    public init(_ all: [Suspension] = []) { self.all = all }

    /// The suspension that holds `app`: its own, else the one for every app.
    public func holding(_ app: String) -> Suspension? {
        all.first { $0.app == app } ?? all.first { $0.app == nil }
    }

    public var isEmpty: Bool { all.isEmpty }
}

extension StateStore {
    /// v4: the event log, and suspensions. Registered after v3 by `migrator`.
    static func registerOperations(_ m: inout DatabaseMigrator) {
        m.registerMigration("v4") { db in
            try db.execute(sql: """
                CREATE TABLE events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
                    app TEXT, color TEXT, commit_id TEXT, kind TEXT NOT NULL, message TEXT NOT NULL);
                CREATE INDEX events_app ON events(app, id);
                CREATE TABLE suspensions (
                    app TEXT PRIMARY KEY, repair_drift INTEGER NOT NULL, at REAL NOT NULL, by TEXT NOT NULL);
                """)
        }
    }

    // MARK: Events

    /// The event log keeps this many events; older ones go.
    public static let eventsKept = 10_000

    /// Appends an event; returns it with its id.
    @discardableResult
    public func addEvent(_ event: AgentEvent) throws -> AgentEvent {
        try db.write { db in
            try db.execute(sql: "INSERT INTO events (at, app, color, commit_id, kind, message) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [event.at.timeIntervalSince1970, event.app, event.color, event.commit, event.kind, event.message])
            var stored = event
            stored.id = db.lastInsertedRowID
            if stored.id % 500 == 0 {
                try db.execute(sql: "DELETE FROM events WHERE id <= ?", arguments: [stored.id - Int64(Self.eventsKept)])
            }
            return stored
        }
    }

    /// Events after `after` (an id), oldest first; for `app`, that app's and the agent's own. With `last`, only the
    /// newest that many.
    public func events(app: String? = nil, after: Int64 = 0, since: Date? = nil, last: Int? = nil) throws -> [AgentEvent] {
        try db.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT * FROM (SELECT * FROM events
                    WHERE id > ?1 AND (?2 IS NULL OR app = ?2 OR app IS NULL) AND (?3 IS NULL OR at >= ?3)
                    ORDER BY id DESC LIMIT ?4) ORDER BY id
                """, arguments: [after, app, since?.timeIntervalSince1970, last ?? -1])
            return rows.map { row in
                AgentEvent(id: row["id"], at: Date(timeIntervalSince1970: row["at"]), app: row["app"], color: row["color"],
                           commit: row["commit_id"], kind: row["kind"], message: row["message"])
            }
        }
    }

    // MARK: Suspensions

    /// Holds back reconciling for `app` (nil: every app) until `resume`.
    public func suspend(_ suspension: Suspension) throws {
        try db.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO suspensions (app, repair_drift, at, by) VALUES (?, ?, ?, ?)",
                           arguments: [suspension.app ?? "*", suspension.repairDrift, suspension.at.timeIntervalSince1970, suspension.by])
        }
        try addEvent(AgentEvent(app: suspension.app, kind: "suspend",
                                message: "suspended \(suspension.app ?? "every app") by \(suspension.by)"
                                    + (suspension.repairDrift ? "; drift is still repaired" : "; drift is not repaired")))
    }

    /// Lifts the suspension of `app` (nil: the one for every app, and every app's own). Returns whether one was lifted.
    @discardableResult
    public func resume(app: String?, by: String) throws -> Bool {
        let lifted = try db.write { db -> Int in
            if let app {
                try db.execute(sql: "DELETE FROM suspensions WHERE app = ?", arguments: [app])
            } else {
                try db.execute(sql: "DELETE FROM suspensions")
            }
            return db.changesCount
        }
        if lifted > 0 { try addEvent(AgentEvent(app: app, kind: "resume", message: "resumed \(app ?? "every app") by \(by)")) }
        return lifted > 0
    }

    public func suspensions() throws -> Suspensions {
        try db.read { db in
            Suspensions(try Row.fetchAll(db, sql: "SELECT * FROM suspensions ORDER BY app").map { row in
                let app: String = row["app"]
                return Suspension(app: app == "*" ? nil : app, repairDrift: row["repair_drift"],
                                  at: Date(timeIntervalSince1970: row["at"]), by: row["by"])
            })
        }
    }

    // MARK: Retry

    /// Forgets how `commit`'s reconcile ended, so the next pass reconciles it as a new commit (`teal retry`). Only a
    /// commit that failed or was refused can be forgotten.
    public func forgetOutcome(commit: String, by: String) throws {
        try db.write { db in
            guard let outcome = try String.fetchOne(db, sql: "SELECT outcome FROM reconciles WHERE commit_id = ?", arguments: [commit]) else {
                throw StateStoreError("commit \(commit.prefix(8)) has no outcome yet; nothing to retry")
            }
            guard outcome == Outcome.failed.rawValue || outcome == Outcome.refused.rawValue else {
                throw StateStoreError("commit \(commit.prefix(8)) was \(outcome); only a failed or refused commit is retried")
            }
            try db.execute(sql: "DELETE FROM reconciles WHERE commit_id = ?", arguments: [commit])
            let last = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_reconciled_commit'")
            if last == commit {
                if let applied = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_applied_commit'") {
                    try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'last_reconciled_commit'", arguments: [applied])
                } else {
                    try db.execute(sql: "DELETE FROM meta WHERE key = 'last_reconciled_commit'")
                }
            }
        }
        try addEvent(AgentEvent(commit: commit, kind: "retry", message: "retry of \(commit.prefix(8)) requested by \(by)"))
    }

    /// The newest audit records, newest first: commit, outcome and note text.
    public func recentOutcomes(limit: Int = 20) throws -> [(commit: String, outcome: Outcome, note: String, startedAt: Date)] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM reconciles ORDER BY started_at DESC, rowid DESC LIMIT ?", arguments: [limit]).map { row in
                (row["commit_id"], Outcome(rawValue: row["outcome"]) ?? .failed, row["detail"], Date(timeIntervalSince1970: row["started_at"]))
            }
        }
    }

    /// SQLite's version, as the library linked into teal reports it.
    public static func sqliteVersion() -> String {
        (try? DatabaseQueue().read { try String.fetchOne($0, sql: "SELECT sqlite_version()") }) ?? nil ?? "unknown"
    }
}

extension StateStore {
    /// How often the supervisor restarted a color running `commit`'s spec (since `since`, when given).
    public func restarts(app: String, color: String, commit: String, since: Date? = nil) throws -> Int {
        try db.read { db in
            try Int.fetchOne(db, sql: """
                SELECT count(*) FROM events WHERE kind = 'restart' AND app = ? AND color = ? AND commit_id = ? AND (?4 IS NULL OR at >= ?4)
                """, arguments: [app, color, commit, since?.timeIntervalSince1970]) ?? 0
        }
    }

    /// Adds a line to the note text recorded for `commit` (for example a crash loop seen after it applied).
    public func appendToAuditNote(commit: String, line: String) throws {
        try db.write { db in
            try db.execute(sql: "UPDATE reconciles SET detail = detail || ? WHERE commit_id = ?", arguments: [line + "\n", commit])
        }
    }
}
