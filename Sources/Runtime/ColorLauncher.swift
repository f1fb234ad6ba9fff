import Foundation
import Git
import Manifest
import State

/// Files teal keeps per data dir for colors.
public struct RuntimePaths: Sendable {
    public var dataDir: String

    public init(dataDir: String) { self.dataDir = dataDir }

    /// The read-only copy of `apps/<app>/` at `commit`.
    public func appFolder(app: String, commit: String) -> String { "\(dataDir)/apps/\(app)/\(commit)" }
    /// Where a color's stdout and stderr go.
    public func log(app: String, color: ColorName) -> String { "\(dataDir)/logs/\(app)-\(color).log" }
    /// The absolute file of an SQLite database, nil for PostgreSQL.
    public func databaseFile(_ location: DatabaseLocation) -> String? {
        switch location {
        case .sqliteRelative(let path): "\(dataDir)/\(path)"
        case .sqliteAbsolute(let path): path
        case .postgres: nil
        }
    }
    /// DATABASE_URL as a color sees it.
    public func databaseURL(_ location: DatabaseLocation) -> String {
        switch location {
        case .postgres(let url): url
        default: "sqlite://" + databaseFile(location)!
        }
    }
}

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

/// Starts colors as detached OS processes, as environment.yaml describes them.
public struct ColorLauncher: Sendable {
    public let paths: RuntimePaths
    /// Variables colors inherit from teal's own environment; everything else is set explicitly.
    public static let inherited = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"]

    public init(dataDir: String) { paths = RuntimePaths(dataDir: dataDir) }

    /// Starts `spec` from `folder` on a fresh port; returns its record (not yet saved, not yet healthy).
    public func start(app: String, color: ColorName, spec: ColorSpec, commit: String, folder: String,
                      database: DatabaseLocation, port: Int? = nil) throws -> ColorRecord {
        let argv = try resolve(command: spec.command, in: folder, app: app, color: color)
        let port = try port ?? FreePort.pick()
        let environment = try environment(app: app, color: color, spec: spec, commit: commit, database: database, port: port)
        if let file = paths.databaseFile(database) {
            try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        }
        let log = paths.log(app: app, color: color)
        LogRotation.rotateIfNeeded(log)
        let identity = try DetachedProcess.spawn(argv: argv, environment: environment, directory: folder, logPath: log)
        return ColorRecord(app: app, color: color, spec: spec, specCommit: commit, pid: identity.pid,
                           processStartTime: identity.startTime, port: port, startedAt: Date())
    }

    /// argv with its first element made absolute: PATH lookup for a bare name, inside `folder` for a relative path.
    public func resolve(command: [String], in folder: String, app: String, color: ColorName) throws -> [String] {
        guard let first = command.first, !first.isEmpty else { throw RuntimeError("\(app) \(color): command is empty") }
        var argv = command
        if first.hasPrefix("/") {
            argv[0] = first
        } else if first.contains("/") {
            let resolved = URL(fileURLWithPath: first, relativeTo: URL(fileURLWithPath: folder + "/")).standardizedFileURL.path
            guard resolved.hasPrefix(folder + "/") else {
                throw RuntimeError("\(app) \(color): command \(first) leaves the app folder")
            }
            // Symlinks may point elsewhere: the file that really runs must be inside the folder too.
            guard let real = Self.realPath(resolved) else {
                throw RuntimeError("\(app) \(color): command \(first) does not exist in the app folder")
            }
            guard let realFolder = Self.realPath(folder), real.hasPrefix(realFolder + "/") else {
                throw RuntimeError("\(app) \(color): command \(first) leaves the app folder through a symlink")
            }
            argv[0] = resolved
        } else {
            let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
            guard let found = searchPath.split(separator: ":").map({ "\($0)/\(first)" })
                .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
                throw RuntimeError("\(app) \(color): command \(first) is not on PATH")
            }
            argv[0] = found
        }
        guard FileManager.default.isExecutableFile(atPath: argv[0]) else {
            throw RuntimeError("\(app) \(color): \(argv[0]) is not an executable file")
        }
        return argv
    }

    /// The path with every symlink resolved (realpath), nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The environment a color runs with; values read from env_files are never logged.
    public func environment(app: String, color: ColorName, spec: ColorSpec, commit: String, database: DatabaseLocation,
                            port: Int) throws -> [String: String] {
        let own = ProcessInfo.processInfo.environment
        var result: [String: String] = [:]
        for name in Self.inherited { if let value = own[name] { result[name] = value } }
        for file in spec.envFiles {
            for (key, value) in try EnvFile.read(file, app: app, color: color) { result[key] = value }
        }
        for (key, value) in spec.env { result[key] = value }
        result["PORT"] = String(port)
        result["TEAL_APP"] = app
        result["TEAL_COLOR"] = color.rawValue
        result["TEAL_RELEASE"] = spec.release
        result["TEAL_COMMIT"] = commit
        result["TEAL_SCHEMA"] = spec.schema
        result["DATABASE_URL"] = paths.databaseURL(database)
        if let file = paths.databaseFile(database) { result["DATABASE_PATH"] = file } else { result["DATABASE_PATH"] = nil }
        return result
    }
}

/// `env_files`: KEY=VALUE lines on the host, outside git.
public enum EnvFile {
    /// The variables of one file; errors name the file and line, never a value.
    public static func read(_ path: String, app: String, color: ColorName) throws -> [String: String] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw RuntimeError("\(app) \(color): env file \(path) does not exist")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw RuntimeError("\(app) \(color): env file \(path) is not readable UTF-8 text")
        }
        var result: [String: String] = [:]
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (index, raw) in lines.enumerated() {
            var line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst("export ".count)) }
            // The line may hold a secret: errors give its number, never any of its text.
            let malformed = RuntimeError("\(path):\(index + 1): expected KEY=VALUE")
            guard let equals = line.firstIndex(of: "=") else { throw malformed }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard Identifiers.isValidEnvName(key) else { throw malformed }
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let quote = value.first, quote == "\"" || quote == "'", value.last == quote {
                value = String(value.dropFirst().dropLast())
            }
            result[key] = value
        }
        return result
    }
}
