import Foundation
import Git

/// Writes read-only working copies of app folders from git commits.
public struct Materializer {
    public let repository: Repository
    public let paths: RuntimePaths

    public init(repository: Repository, dataDir: String) {
        self.repository = repository
        paths = RuntimePaths(dataDir: dataDir)
    }

    /// The folder holding `apps/<app>/` as of `commit`, written (read-only) on first use. Entry names that
    /// are not plain names and symlinks that lead out of the folder are refused.
    public func folder(app: String, commit: String) throws -> String {
        let target = paths.appFolder(app: app, commit: commit)
        if FileManager.default.fileExists(atPath: target) { return target }
        guard let id = ObjectID(hex: commit) else { throw RuntimeError("'\(commit)' is not a commit id") }
        let tree = try repository.tree(at: id)
        let root = "apps/\(app)"
        let files = try Self.files(in: tree, under: root)
        let staging = "\(target).partial-\(getpid())"
        let fm = FileManager.default
        try? Self.makeWritable(staging)
        try? fm.removeItem(atPath: staging)
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        var directories = [staging]
        var symlinks: [String] = []
        do {
            for (path, entry) in files {
                let destination = "\(staging)/\(path)"
                let parent = (destination as NSString).deletingLastPathComponent
                if !fm.fileExists(atPath: parent) {
                    try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
                }
                directories.append(parent)
                let bytes = try tree.contents("\(root)/\(path)") ?? []
                switch entry.kind {
                case .symlink:
                    let destinationPath = String(decoding: bytes, as: UTF8.self)
                    if destinationPath.hasPrefix("/") {
                        throw RuntimeError("\(root)/\(path): symlink to the absolute path \(destinationPath) leaves the app folder")
                    }
                    try fm.createSymbolicLink(atPath: destination, withDestinationPath: destinationPath)
                    symlinks.append(path)
                case .file, .executable:
                    guard fm.createFile(atPath: destination, contents: Data(bytes)) else { throw RuntimeError("cannot write \(destination)") }
                    chmod(destination, entry.kind == .executable ? 0o555 : 0o444)
                case .directory, .submodule:
                    continue
                }
            }
            // Checked once every link exists, as the kernel would follow them (links through links included).
            for path in symlinks where !Self.staysInside(staging, path) {
                let destinationPath = (try? fm.destinationOfSymbolicLink(atPath: "\(staging)/\(path)")) ?? "?"
                throw RuntimeError("\(root)/\(path): symlink to \(destinationPath) leaves the app folder")
            }
        } catch {
            try? Self.makeWritable(staging)
            try? fm.removeItem(atPath: staging)
            throw error
        }
        for directory in Set(directories).sorted(by: { $0.count > $1.count }) { chmod(directory, 0o555) }
        do {
            try fm.moveItem(atPath: staging, toPath: target)
        } catch where fm.fileExists(atPath: target) {
            try? Self.makeWritable(staging)
            try? fm.removeItem(atPath: staging)
        }
        return target
    }

    /// Every file (and symlink) under `directory` of the tree, as (path relative to it, entry); an entry whose
    /// name is empty, `.`, `..` or holds a `/`, or repeats another's, is refused before anything is written.
    static func files(in tree: CommitTree, under directory: String) throws -> [(path: String, entry: CommitTree.Entry)] {
        var result: [(path: String, entry: CommitTree.Entry)] = []
        func walk(_ relative: String) throws {
            let folder = relative.isEmpty ? directory : "\(directory)/\(relative)"
            var seen: Set<String> = []
            for entry in try tree.entries(folder) ?? [] {
                guard !entry.name.isEmpty, entry.name != ".", entry.name != "..", !entry.name.contains("/") else {
                    throw RuntimeError("\(folder): the tree has an entry named '\(entry.name)', which is not a valid file name")
                }
                // A second entry of the same name could write through a symlink the first one made.
                guard seen.insert(entry.name).inserted else {
                    throw RuntimeError("\(folder): the tree has two entries named '\(entry.name)'")
                }
                let path = relative.isEmpty ? entry.name : "\(relative)/\(entry.name)"
                if entry.kind == .directory { try walk(path) } else { result.append((path, entry)) }
            }
        }
        try walk("")
        return result
    }

    /// Whether following `path` (relative to `root`, symlinks resolved the way the kernel does) ends inside
    /// `root`. A missing component simply ends resolution there; an absolute link target or a `..` above
    /// `root` leaves it.
    static func staysInside(_ root: String, _ path: String) -> Bool {
        var resolved: [String] = []
        var pending: [String] = path.split(separator: "/").map(String.init).reversed()
        var links = 0
        while let component = pending.popLast() {
            switch component {
            case "", ".":
                continue
            case "..":
                guard resolved.popLast() != nil else { return false }
            default:
                resolved.append(component)
                let current = root + "/" + resolved.joined(separator: "/")
                guard let destination = try? FileManager.default.destinationOfSymbolicLink(atPath: current) else { continue }
                links += 1
                guard links <= 40, !destination.hasPrefix("/") else { return false }
                resolved.removeLast()
                pending += destination.split(separator: "/").map(String.init).reversed()
            }
        }
        return true
    }

    /// Removes the working copies (`apps/<app>/<commit>`) that no color in `keeping` runs from. Returns the
    /// folders removed. Folders still being written (`.partial-*`) and anything not named by a commit id stay.
    @discardableResult
    public static func prune(dataDir: String, keeping: Set<String>) -> [String] {
        let fm = FileManager.default
        let root = "\(dataDir)/apps"
        var removed: [String] = []
        for app in (try? fm.contentsOfDirectory(atPath: root)) ?? [] {
            for name in (try? fm.contentsOfDirectory(atPath: "\(root)/\(app)")) ?? [] where ObjectID(hex: name) != nil {
                let folder = "\(root)/\(app)/\(name)"
                guard !keeping.contains(folder) else { continue }
                try? makeWritable(folder)
                if (try? fm.removeItem(atPath: folder)) != nil { removed.append(folder) }
            }
        }
        return removed
    }

    /// Makes a folder tree writable so it can be removed. chmod follows symlinks, so they are skipped: a
    /// link may point anywhere on the host.
    private static func makeWritable(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return }
        chmod(path, 0o755)
        for item in try FileManager.default.contentsOfDirectory(atPath: path) {
            let child = "\(path)/\(item)"
            guard lstat(child, &info) == 0, info.st_mode & S_IFMT != S_IFLNK else { continue }
            if info.st_mode & S_IFMT == S_IFDIR { try makeWritable(child) } else { chmod(child, 0o755) }
        }
    }
}
