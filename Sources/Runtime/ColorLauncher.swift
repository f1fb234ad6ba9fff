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

    /// The folder holding `apps/<app>/` as of `commit`, written (read-only) on first use.
    public func folder(app: String, commit: String) throws -> String {
        let target = paths.appFolder(app: app, commit: commit)
        if FileManager.default.fileExists(atPath: target) { return target }
        guard let id = ObjectID(hex: commit) else { throw RuntimeError("'\(commit)' is not a commit id") }
        let tree = try repository.tree(at: id)
        let staging = "\(target).partial-\(getpid())"
        let fm = FileManager.default
        try? makeWritable(staging)
        try? fm.removeItem(atPath: staging)
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        var directories = [staging]
        for (path, entry) in try tree.files(under: "apps/\(app)") {
            let destination = "\(staging)/\(path)"
            let parent = (destination as NSString).deletingLastPathComponent
            if !fm.fileExists(atPath: parent) {
                try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
            }
            directories.append(parent)
            let bytes = try tree.contents("apps/\(app)/\(path)") ?? []
            switch entry.kind {
            case .symlink:
                try fm.createSymbolicLink(atPath: destination, withDestinationPath: String(decoding: bytes, as: UTF8.self))
            case .file, .executable:
                guard fm.createFile(atPath: destination, contents: Data(bytes)) else { throw RuntimeError("cannot write \(destination)") }
                chmod(destination, entry.kind == .executable ? 0o555 : 0o444)
            case .directory, .submodule:
                continue
            }
        }
        for directory in Set(directories).sorted(by: { $0.count > $1.count }) { chmod(directory, 0o555) }
        do {
            try fm.moveItem(atPath: staging, toPath: target)
        } catch where fm.fileExists(atPath: target) {
            try? makeWritable(staging)
            try? fm.removeItem(atPath: staging)
        }
        return target
    }

    private func makeWritable(_ path: String) throws {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return }
        chmod(path, 0o755)
        while let item = enumerator.nextObject() as? String { chmod("\(path)/\(item)", 0o755) }
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
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst("export ".count)) }
            guard let equals = line.firstIndex(of: "=") else {
                throw RuntimeError("\(path):\(index + 1): expected KEY=VALUE")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard Identifiers.isValidEnvName(key) else { throw RuntimeError("\(path):\(index + 1): '\(key)' is not a variable name") }
            var value = String(line[line.index(after: equals)...])
            if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
                value = String(value.dropFirst().dropLast())
            }
            result[key] = value
        }
        return result
    }
}
