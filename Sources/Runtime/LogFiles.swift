import Foundation
import Manifest

/// A color's output, one file per release: `logs/<app>-<color>.log` is the running release's (rotated by size into
/// `.1`…`.3` while it runs), and when a color starts on another release or commit the previous file moves aside to
/// `logs/<app>-<color>@<release>-<commit>.log`, so lines of old releases never mix with the new one's. The last
/// `keptReleases` such files are kept.
public struct LogFiles: Sendable {
    public let paths: RuntimePaths
    public static let keptReleases = 5

    public init(dataDir: String) { paths = RuntimePaths(dataDir: dataDir) }

    /// One release's log.
    public struct Release: Sendable, Hashable {
        public var release: String
        public var commit: String
        /// When teal started it (the first start of this release for this color).
        public var startedAt: Date?
        /// The files, oldest first (rotated segments, then the file itself).
        public var files: [String]
        public var isCurrent: Bool
    }

    /// The running release's file, nil when the names cannot be a color's (no path ever leaves `logs/`).
    public func current(app: String, color: String) -> String? {
        guard Identifiers.isValidAppName(app), let color = ColorName(rawValue: color) else { return nil }
        return paths.log(app: app, color: color)
    }

    func marker(_ log: String) -> String { log + ".release" }

    /// Called before a color starts: moves the previous release's output aside when `spec`'s release or `commit`
    /// differs from the one the file holds.
    public func prepare(app: String, color: ColorName, spec: ColorSpec, commit: String) {
        let fm = FileManager.default
        let log = paths.log(app: app, color: color)
        let line = "\(spec.release)\t\(commit)\t\(Date().timeIntervalSince1970)\n"
        try? fm.createDirectory(atPath: (log as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if let previous = Self.readMarker(marker(log)) {
            if previous.release == spec.release && previous.commit == commit { return }
            let archive = "\(paths.dataDir)/logs/\(app)-\(color)@\(Self.safe(previous.release))-\(previous.commit.prefix(8)).log"
            for index in stride(from: 3, through: 1, by: -1) where fm.fileExists(atPath: "\(log).\(index)") {
                try? fm.removeItem(atPath: "\(archive).\(index)")
                try? fm.moveItem(atPath: "\(log).\(index)", toPath: "\(archive).\(index)")
            }
            if fm.fileExists(atPath: log) {
                try? fm.removeItem(atPath: archive)
                try? fm.moveItem(atPath: log, toPath: archive)
                try? fm.removeItem(atPath: marker(archive))
                try? fm.moveItem(atPath: marker(log), toPath: marker(archive))
            }
            prune(app: app, color: color)
        } else if fm.fileExists(atPath: log) {
            // A file from before per-release logs: its lines belong to an unknown release.
            let archive = "\(paths.dataDir)/logs/\(app)-\(color)@unknown-00000000.log"
            try? fm.removeItem(atPath: archive)
            try? fm.moveItem(atPath: log, toPath: archive)
        }
        try? line.write(toFile: marker(log), atomically: true, encoding: .utf8)
    }

    /// Every release with a log for this color, oldest first; the running one last.
    public func releases(app: String, color: String) -> [Release] {
        guard let log = current(app: app, color: color) else { return [] }
        let fm = FileManager.default
        let directory = "\(paths.dataDir)/logs"
        let prefix = "\(app)-\(color)@"
        var result: [Release] = []
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(prefix) && name.hasSuffix(".log") {
            let path = "\(directory)/\(name)"
            let marker = Self.readMarker(self.marker(path))
            let stem = name.dropFirst(prefix.count).dropLast(4)
            let release = marker?.release ?? String(stem[..<(stem.lastIndex(of: "-") ?? stem.endIndex)])
            result.append(Release(release: release, commit: marker?.commit ?? String(stem.suffix(8)), startedAt: marker?.startedAt,
                                  files: segments(path), isCurrent: false))
        }
        result.sort { ($0.startedAt ?? .distantPast, $0.files.last ?? "") < ($1.startedAt ?? .distantPast, $1.files.last ?? "") }
        if fm.fileExists(atPath: log) {
            let marker = Self.readMarker(self.marker(log))
            result.append(Release(release: marker?.release ?? "unknown", commit: marker?.commit ?? "", startedAt: marker?.startedAt,
                                  files: segments(log), isCurrent: true))
        }
        return result
    }

    /// A log file's rotated segments, oldest first, then the file.
    func segments(_ path: String) -> [String] {
        let fm = FileManager.default
        return stride(from: 3, through: 1, by: -1).map { "\(path).\($0)" }.filter { fm.fileExists(atPath: $0) } + [path]
    }

    private func prune(app: String, color: ColorName) {
        let archived = releases(app: app, color: color.rawValue).filter { !$0.isCurrent }
        for old in archived.dropLast(Self.keptReleases) {
            for file in old.files { try? FileManager.default.removeItem(atPath: file) }
            if let last = old.files.last { try? FileManager.default.removeItem(atPath: marker(last)) }
        }
    }

    static func readMarker(_ path: String) -> (release: String, commit: String, startedAt: Date?)? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\t", omittingEmptySubsequences: false)
        guard parts.count >= 2 else { return nil }
        return (String(parts[0]), String(parts[1]), parts.count > 2 ? Double(parts[2]).map(Date.init(timeIntervalSince1970:)) : nil)
    }

    /// A release label as a file name part.
    static func safe(_ label: String) -> String {
        String(label.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" ? $0 : "_" }.prefix(64))
    }
}

/// Reading a color's log: the last lines, lines since a time, following new lines.
public enum LogReader {
    /// The last `lines` lines over `files` (oldest first).
    public static func tail(_ path: String, lines: Int) throws -> [String] {
        let files = LogFiles(dataDir: "/").segments(path)
        var all: [String] = []
        for file in files { all += try readLines(file) }
        return Array(all.suffix(max(0, lines)))
    }

    /// A file's lines (without the trailing newline of the last).
    public static func readLines(_ file: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: file) else { return [] }
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: file)), as: UTF8.self)
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    /// The time a line starts with (`2026-12-01T12:00:00Z`, `2026-12-01 12:00:00,123`, …), nil when it has none.
    public static func timestamp(_ line: String) -> Date? {
        let head = line.prefix(19)
        guard head.count == 19 else { return nil }
        let normalized = head.replacingOccurrences(of: " ", with: "T")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withTime, .withDashSeparatorInDate, .withColonSeparatorInTime]
        formatter.timeZone = line.dropFirst(19).contains("Z") || line.dropFirst(19).hasPrefix(".") ? TimeZone(identifier: "UTC") : .current
        return formatter.date(from: normalized)
    }
}

extension LogReader {
    /// A file's inode and size, nil when it is not there.
    public static func position(_ path: String) -> (inode: UInt64, size: UInt64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_ino), UInt64(info.st_size))
    }

    /// The bytes of `path` in `from..<to`, nil when the file is not there or shorter than `to`.
    public static func bytes(_ path: String, from: UInt64, to: UInt64) -> [UInt8]? {
        guard from <= to, let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: from)) != nil else { return nil }
        let count = Int(to - from)
        let data = count == 0 ? Data() : ((try? handle.read(upToCount: count)) ?? nil) ?? Data()
        guard data.count == count else { return nil }
        return Array(data)
    }

    /// The file among `files` whose inode is `inode`.
    public static func file(inode: UInt64, among files: [String]) -> String? {
        files.first { position($0)?.inode == inode }
    }
}
