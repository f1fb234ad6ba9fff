import Foundation

/// Size-based rotation of a log file that a detached process keeps appending to (copy, then truncate).
public enum LogRotation {
    public static let defaultLimit = 10 * 1024 * 1024

    /// Moves the content of `path` to `path.1` (older ones to `.2`…`.keep`) when it exceeds `limit` bytes.
    /// Safe while the color runs: its output descriptor appends, so after the copy and the truncation its next
    /// line lands at the start of the emptied file. The size is read with one `stat`, cheap enough for every
    /// supervisor pass.
    public static func rotateIfNeeded(_ path: String, limit: Int = defaultLimit, keep: Int = 3) {
        var info = stat()
        guard stat(path, &info) == 0, Int(info.st_size) > limit else { return }
        let fm = FileManager.default
        for index in stride(from: keep - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(path).\(index)") {
            try? fm.removeItem(atPath: "\(path).\(index + 1)")
            try? fm.moveItem(atPath: "\(path).\(index)", toPath: "\(path).\(index + 1)")
        }
        try? fm.removeItem(atPath: "\(path).1")
        guard (try? fm.copyItem(atPath: path, toPath: "\(path).1")) != nil else { return }
        truncate(path, 0)
    }
}
