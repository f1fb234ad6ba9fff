/// The two colors of a blue/green deploy.
public enum ColorName: String, CaseIterable, Codable, Sendable, Comparable, CustomStringConvertible {
    case blue, green

    public static func < (a: ColorName, b: ColorName) -> Bool { a.rawValue < b.rawValue }
    public var description: String { rawValue }
    /// The other color.
    public var other: ColorName { self == .blue ? .green : .blue }
}

/// What one color runs: `colors.<color>` in environment.yaml.
public struct ColorSpec: Codable, Hashable, Sendable {
    /// A label shown in status and history.
    public var release: String
    /// argv; a relative first element resolves inside the app folder.
    public var command: [String]
    /// The migration (file stem) this release is written for.
    public var schema: String
    public var env: [String: String]
    /// Absolute host paths of KEY=VALUE files, read at start, never logged.
    public var envFiles: [String]
    /// `restart_on_change: true`: the files of the app folder are part of the spec, so a commit that changes them
    /// restarts the color (nil: only release, command, schema and env do).
    public var restartOnChange: Bool?
    /// With `restartOnChange`: a digest of the app folder's files other than environment.yaml, traffic.yaml and
    /// schema/, set by the desired-state reader.
    public var contentDigest: String?

    public init(release: String, command: [String], schema: String, env: [String: String] = [:], envFiles: [String] = []) {
        self.release = release
        self.command = command
        self.schema = schema
        self.env = env
        self.envFiles = envFiles
    }
}

/// How teal decides a color is healthy.
public struct HealthCheck: Codable, Hashable, Sendable {
    public var path: String = "/healthz"
    public var interval: Duration = .milliseconds(500)
    public var timeout: Duration = .seconds(2)
    public var healthyAfter: Int = 2
    public var startTimeout: Duration = .seconds(60)

    public init() {}
}

/// Where an app's data lives.
public enum DatabaseLocation: Hashable, Codable, Sendable, CustomStringConvertible {
    /// `sqlite:RELATIVE`, under teal's data dir.
    case sqliteRelative(String)
    /// `sqlite:///ABS/PATH`.
    case sqliteAbsolute(String)
    /// `postgres://…` or `postgresql://…`.
    case postgres(String)

    public var description: String {
        switch self {
        case .sqliteRelative(let p): "sqlite:\(p)"
        case .sqliteAbsolute(let p): "sqlite://\(p)"
        case .postgres(let url): url
        }
    }

    public var isPostgres: Bool {
        if case .postgres = self { return true }
        return false
    }

    /// Parses a database URL as environment.yaml spells it; nil with a reason when it is not one.
    public static func parse(_ text: String) -> Result<DatabaseLocation, DatabaseURLError> {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") { return .success(.postgres(text)) }
        guard text.hasPrefix("sqlite:") else {
            return .failure(DatabaseURLError(message: "database must be sqlite:RELATIVE, sqlite:///ABS/PATH or postgres://…, got '\(text)'"))
        }
        let rest = String(text.dropFirst("sqlite:".count))
        if rest.hasPrefix("///") {
            let path = String(rest.dropFirst(2))
            guard path.count > 1 else { return .failure(DatabaseURLError(message: "sqlite:/// needs an absolute file path")) }
            return .success(.sqliteAbsolute(path))
        }
        if rest.hasPrefix("/") {
            return .failure(DatabaseURLError(message: "an absolute SQLite path is written sqlite:///ABS/PATH (three slashes)"))
        }
        guard !rest.isEmpty else { return .failure(DatabaseURLError(message: "sqlite: needs a file name")) }
        let components = rest.split(separator: "/", omittingEmptySubsequences: false)
        if components.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }) {
            return .failure(DatabaseURLError(message: "relative SQLite path '\(rest)' must stay inside teal's data dir (no '.', '..' or empty parts)"))
        }
        return .success(.sqliteRelative(rest))
    }
}

public struct DatabaseURLError: Error, Sendable { public var message: String }

/// Settings of an app's database beside its URL: `database: {url: …, retention: 7d, lock_timeout: 1s}` in
/// environment.yaml. Every one applies to PostgreSQL only.
public struct DatabaseOptions: Codable, Hashable, Sendable {
    /// How long what a completed migration put aside (dropped columns and tables, on PostgreSQL) is kept before
    /// it is purged.
    public var retention: Duration
    /// How long each of teal's DDL transactions waits for a table lock before giving up (and trying again).
    public var lockTimeout: Duration
    /// Longest any statement of teal's may run (concurrent index builds excepted).
    public var statementTimeout: Duration

    public static let defaultRetention = Duration.seconds(7 * 86_400)
    public static let defaultLockTimeout = Duration.seconds(1)
    public static let defaultStatementTimeout = Duration.seconds(60)

    public init(retention: Duration = DatabaseOptions.defaultRetention, lockTimeout: Duration = DatabaseOptions.defaultLockTimeout,
                statementTimeout: Duration = DatabaseOptions.defaultStatementTimeout) {
        self.retention = retention
        self.lockTimeout = lockTimeout
        self.statementTimeout = statementTimeout
    }

    private enum CodingKeys: String, CodingKey { case retention, lockTimeout, statementTimeout }

    /// Settings recorded before a key existed read as its default.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        retention = try c.decodeIfPresent(Duration.self, forKey: .retention) ?? Self.defaultRetention
        lockTimeout = try c.decodeIfPresent(Duration.self, forKey: .lockTimeout) ?? Self.defaultLockTimeout
        statementTimeout = try c.decodeIfPresent(Duration.self, forKey: .statementTimeout) ?? Self.defaultStatementTimeout
    }
}

/// apps/<app>/environment.yaml.
public struct EnvironmentManifest: Codable, Hashable, Sendable {
    public var database: DatabaseLocation
    public var databaseOptions: DatabaseOptions
    public var health: HealthCheck
    /// How long in-flight requests to a color leaving traffic may take to finish.
    public var drain: Duration
    public var colors: [ColorName: ColorSpec]

    public init(database: DatabaseLocation, databaseOptions: DatabaseOptions = DatabaseOptions(), health: HealthCheck = HealthCheck(),
                drain: Duration = .seconds(10), colors: [ColorName: ColorSpec]) {
        self.database = database
        self.databaseOptions = databaseOptions
        self.health = health
        self.drain = drain
        self.colors = colors
    }
}
