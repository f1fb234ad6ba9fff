import Foundation
import GRDB

/// Where a color's log file stands: the file (by inode, which survives the renames of a new release's archive) and
/// its size.
public struct LogPosition: Codable, Hashable, Sendable {
    public var inode: UInt64
    public var size: UInt64

    public init(inode: UInt64, size: UInt64) {
        self.inode = inode
        self.size = size
    }
}

/// The bytes of a color's log that one step's run wrote: the file by inode, the byte range, and a hash of those
/// bytes, so a range whose file was rotated (copied away, then truncated and written again) is recognised as gone
/// instead of answering with other lines.
public struct StepLogRange: Codable, Hashable, Sendable {
    public var app: String
    public var color: String
    public var inode: UInt64
    public var from: UInt64
    public var to: UInt64
    /// FNV-1a 64 of the bytes in `from..<to`.
    public var hash: UInt64

    public init(app: String, color: String, inode: UInt64, from: UInt64, to: UInt64, hash: UInt64) {
        self.app = app
        self.color = color
        self.inode = inode
        self.from = from
        self.to = to
        self.hash = hash
    }

    /// FNV-1a 64, enough to tell that a range still holds the bytes it held.
    public static func hash<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }
}

extension StateStore {
    /// v5: each journaled step that starts, waits for or stops a color keeps the range of that color's log it wrote.
    static func registerStepLogs(_ m: inout DatabaseMigrator) {
        m.registerMigration("v5") { db in
            try db.execute(sql: "ALTER TABLE journal ADD COLUMN log_range TEXT")
        }
    }

    /// Records the log range of a journaled step.
    public func saveStepLog(_ id: Int64, _ range: StepLogRange) throws {
        let text = String(decoding: try JSONEncoder().encode(range), as: UTF8.self)
        try db.write { db in
            try db.execute(sql: "UPDATE journal SET log_range = ? WHERE id = ?", arguments: [text, id])
        }
    }

    /// The log range recorded for a journaled step, nil when it has none.
    public func stepLog(_ id: Int64) throws -> StepLogRange? {
        try db.read { db in
            guard let text = try String.fetchOne(db, sql: "SELECT log_range FROM journal WHERE id = ?", arguments: [id]) else { return nil }
            return try? JSONDecoder().decode(StepLogRange.self, from: Data(text.utf8))
        }
    }
}
