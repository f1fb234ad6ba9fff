import GRDB
import Manifest

/// Why a schema operation failed: names the migration, the operation (index and kind) and the cause.
public struct SchemaError: Error, Sendable, CustomStringConvertible {
    /// The migration concerned, if any.
    public var migration: String?
    /// Index of the operation in the migration's `operations` list.
    public var operationIndex: Int?
    /// The operation's YAML key, e.g. `add_column`.
    public var operationKind: String?
    /// What went wrong, in words.
    public var message: String
    /// The database was busy or locked by another connection: trying again later may succeed.
    public var isTransient = false
    /// True when a start stopped because its caller asked it to (`shouldStop`), not because anything failed.
    public var isInterruption = false
    /// The server's SQLSTATE, when a server-side database (PostgreSQL) refused a statement.
    public var sqlState: String?
    /// The statement that failed, when known.
    public var statement: String?

    /// Makes an error; the operation fields are optional.
    public init(migration: String? = nil, operationIndex: Int? = nil, operationKind: String? = nil, _ message: String) {
        self.migration = migration
        self.operationIndex = operationIndex
        self.operationKind = operationKind
        self.message = message
    }

    /// A start stopped on request.
    public init(migration: String, interruption message: String) {
        self.init(migration: migration, message)
        isInterruption = true
    }

    public var description: String {
        var prefix = ""
        if let migration { prefix += "migration \(migration)" }
        if let operationIndex {
            prefix += (prefix.isEmpty ? "" : ", ") + "operations[\(operationIndex)]"
            if let operationKind { prefix += " (\(operationKind))" }
        }
        return prefix.isEmpty ? message : "\(prefix): \(message)"
    }

    func located(migration: String, index: Int?, kind: String?) -> SchemaError {
        var copy = self
        if copy.migration == nil { copy.migration = migration }
        if copy.operationIndex == nil { copy.operationIndex = index; copy.operationKind = kind }
        return copy
    }
}

extension SchemaError {
    /// Wraps any error (an SQLite error keeps SQLite's message) into a `SchemaError` for the given place.
    static func wrap(_ error: any Error, migration: String?, index: Int? = nil, kind: String? = nil, doing: String? = nil) -> SchemaError {
        if let schemaError = error as? SchemaError {
            return migration.map { schemaError.located(migration: $0, index: index, kind: kind) } ?? schemaError
        }
        let cause = SQLiteMessage.of(error)
        var wrapped = SchemaError(migration: migration, operationIndex: index, operationKind: kind, doing.map { "\($0): \(cause)" } ?? cause)
        if let code = (error as? DatabaseError)?.resultCode, code == .SQLITE_BUSY || code == .SQLITE_LOCKED { wrapped.isTransient = true }
        return wrapped
    }
}
