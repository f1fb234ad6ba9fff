import GRDB

/// The state store (or any SQLite database) busy or locked by another connection is worth waiting for.
extension DatabaseError: TransientError {
    public var isTransient: Bool { resultCode == .SQLITE_BUSY || resultCode == .SQLITE_LOCKED }
}
