import Foundation
import Manifest

/// Where a migration stands in the app database.
public enum MigrationState: String, Sendable, Codable, CaseIterable {
    /// Expanded, existing rows still being backfilled (a crash left it here; `start` resumes it).
    case backfilling
    /// Expanded: both shapes usable.
    case started
    /// Contracted: only the new shape remains.
    case completed
    /// Undone: only the old shape remains.
    case rolledBack = "rolled_back"
    /// Completed, its complete being undone (PostgreSQL's reopen) and cut off half-way: the next reopen finishes
    /// it, or complete returns it to completed.
    case reopening

    /// True while the migration is in flight (started, not completed).
    public var isInFlight: Bool { self == .backfilling || self == .started }
    /// True once completed, also while a reopen of it is cut off (the next pass finishes or undoes that).
    public var isCompleted: Bool { self == .completed || self == .reopening }
}

/// One row of `_teal_migrations`.
public struct AppliedMigration: Sendable, Hashable {
    /// The migration's file stem, e.g. `0002_split_name`.
    public var name: String
    /// Git blob id of the file when it was started.
    public var checksum: String
    /// Current state.
    public var state: MigrationState
    /// The full definition as stored at start: what rollback uses when the file is gone.
    public var definition: Migration
    /// When start began.
    public var startedAt: Date
    /// When complete finished.
    public var completedAt: Date?
    /// When rollback finished.
    public var rolledBackAt: Date?

    public init(name: String, checksum: String, state: MigrationState, definition: Migration, startedAt: Date,
                completedAt: Date? = nil, rolledBackAt: Date? = nil) {
        self.name = name
        self.checksum = checksum
        self.state = state
        self.definition = definition
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.rolledBackAt = rolledBackAt
    }
}

/// The migration history of one database.
public struct SchemaStatus: Sendable {
    /// Every migration ever started (including rolled-back ones), in number order.
    public var migrations: [AppliedMigration]

    public init(migrations: [AppliedMigration]) { self.migrations = migrations }
    /// The migration started and not yet completed, if any.
    public var inFlight: AppliedMigration? { migrations.last { $0.state.isInFlight } }
    /// The most recently completed migration (its complete perhaps half undone: `reopening`).
    public var lastCompleted: AppliedMigration? { migrations.last { $0.state.isCompleted } }
}

/// Tuning of the engine.
public struct SchemaEngineOptions: Sendable {
    /// Most rows per backfill transaction.
    public var batchSize: Int
    /// How long a statement waits for a lock held by another connection.
    public var busyTimeout: TimeInterval
    /// Least pause between backfill batches.
    public var batchPause: TimeInterval
    /// Longest a backfill transaction should take: slower batches shrink (down to 100 rows, or `batchSize`
    /// when that is smaller) and grow back to `batchSize` when fast again.
    public var batchDuration: TimeInterval
    /// Whether the backfill leaves other connections' writers the gaps they need to get the lock soon (see
    /// `BackfillPacer`); off, batches follow each other with only `batchPause` between them.
    public var yieldsToWriters: Bool

    /// Defaults: at most 1000 rows and about 5 ms a batch, 5 s busy timeout, gaps for other writers.
    public init(batchSize: Int = 1000, busyTimeout: TimeInterval = 5, batchPause: TimeInterval = 0,
                batchDuration: TimeInterval = 0.005, yieldsToWriters: Bool = true) {
        self.batchSize = max(1, batchSize)
        self.busyTimeout = busyTimeout
        self.batchPause = max(0, batchPause)
        self.batchDuration = max(0.0005, batchDuration)
        self.yieldsToWriters = yieldsToWriters
    }
}
