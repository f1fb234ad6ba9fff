import Manifest

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
