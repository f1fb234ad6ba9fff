import Manifest
import Planning

/// Expand/contract migrations on one app database. One implementation per database kind, chosen from the
/// app's `database:` URL by a `SchemaBackends`.
public protocol SchemaBackend: Sendable {
    /// The database, for messages.
    var description: String { get }
    /// The migration history stored in the database; nil when the database does not exist yet (nothing is created).
    func observe() async throws -> ObservedSchema?
    /// Expands `migration` and backfills; `progress` hears rows done and total while the backfill runs.
    /// `shouldStop` is asked between backfill batches: when it answers true (a newer commit arrived, the agent is
    /// stopping) the start stops within one batch, leaving the migration for a later start to resume or a
    /// rollback to undo, and throws.
    func start(_ migration: Migration, progress: @escaping @Sendable (_ done: Int, _ total: Int) -> Void,
               shouldStop: @escaping @Sendable () -> Bool) async throws
    /// Contracts the in-flight migration `name`.
    func complete(_ name: String) async throws
    /// Undoes the started migration `name`, from the definition stored in the database.
    func rollback(_ name: String) async throws
    /// Undoes the complete of `name`, the last completed migration: its old shape is back, computed from today's rows,
    /// and the migration is in flight again. Only asked when `observe()` said `lastCompletedReopenable`. `progress` and
    /// `shouldStop` as for `start`, while the old shape's values are filled in; a reopen stopped or cut off is
    /// `lastCompletedReopening` until a reopen finishes it or a complete undoes it.
    func reopen(_ name: String, progress: @escaping @Sendable (_ done: Int, _ total: Int) -> Void,
                shouldStop: @escaping @Sendable () -> Bool) async throws
    /// Housekeeping, called every pass: drops what completed migrations put aside once the retention window has
    /// passed, brings grants in line. Cheap when there is nothing to do; a failure is logged and tried again
    /// later, never thrown.
    func maintain() async
}

extension SchemaBackend {
    public func maintain() async {}

    /// Where a complete is final (it dropped what the old shape had).
    public func reopen(_ name: String, progress: @escaping @Sendable (_ done: Int, _ total: Int) -> Void,
                       shouldStop: @escaping @Sendable () -> Bool) async throws {
        throw ReconcileFailure.permanent("\(description) cannot undo the complete of \(name): it dropped what the old shape had")
    }
}

/// Picks the schema backend for a database URL.
public protocol SchemaBackends: Sendable {
    /// Throws a permanent `ReconcileFailure` when no backend serves that kind of database.
    func backend(for database: DatabaseLocation) throws -> any SchemaBackend
    /// The same, with the settings environment.yaml gives beside the URL (the retention window).
    func backend(for database: DatabaseLocation, options: DatabaseOptions) throws -> any SchemaBackend
    /// What that kind of database cannot run of `migrations`, by file and line, found without touching any app
    /// database (constructs it cannot express, a dry run of each migration on a scratch database).
    func validate(_ migrations: [Migration], for database: DatabaseLocation) -> [Diagnostic]
    /// What a color written for migration `shape` needs in its environment to see that shape (`DATABASE_URL`
    /// selecting it, where the password is); empty when the database serves every shape under one name.
    func colorEnvironment(for database: DatabaseLocation, shape: String) -> [String: String]
}

extension SchemaBackends {
    public func colorEnvironment(for database: DatabaseLocation, shape: String) -> [String: String] { [:] }
    public func backend(for database: DatabaseLocation, options: DatabaseOptions) throws -> any SchemaBackend { try backend(for: database) }
}
