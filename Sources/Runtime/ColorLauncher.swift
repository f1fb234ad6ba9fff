import Foundation
import Manifest

/// Starts colors as detached OS processes, as environment.yaml describes them.
public struct ColorLauncher: Sendable {
    public let paths: RuntimePaths
    /// Variables colors inherit from teal's own environment; everything else is set explicitly.
    public static let inherited = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"]

    public init(dataDir: String) { paths = RuntimePaths(dataDir: dataDir) }

    /// A color process just started: not yet healthy.
    public struct Launched: Sendable {
        public var identity: ProcessIdentity
        public var port: Int
        public var log: String
    }

    /// Starts `spec` from `folder` on a fresh port (or `port`).
    public func start(app: String, color: ColorName, spec: ColorSpec, commit: String, folder: String,
                      database: DatabaseLocation, databaseEnvironment: [String: String] = [:], port: Int? = nil) throws -> Launched {
        let argv = try resolve(command: spec.command, in: folder, app: app, color: color)
        let port = try port ?? FreePort.pick()
        var environment = try environment(app: app, color: color, spec: spec, commit: commit, database: database, port: port)
        environment.merge(databaseEnvironment) { _, new in new }
        if let file = paths.databaseFile(database) {
            try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        }
        let log = paths.log(app: app, color: color)
        LogFiles(dataDir: paths.dataDir).prepare(app: app, color: color, spec: spec, commit: commit)
        LogRotation.rotateIfNeeded(log)
        let identity = try DetachedProcess.spawn(argv: argv, environment: environment, directory: folder, logPath: log)
        return Launched(identity: identity, port: port, log: log)
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
