/// One app as committed under apps/<app>/.
public struct AppManifest: Codable, Hashable, Sendable {
    public var name: String
    public var environment: EnvironmentManifest
    /// nil when the app has no traffic.yaml (nothing is routed to it).
    public var traffic: TrafficManifest?
    /// In file-name order.
    public var migrations: [Migration]
    /// For each declared color, the commit that set its current spec (its working copy comes from there).
    public var specCommits: [ColorName: String]

    public init(name: String, environment: EnvironmentManifest, traffic: TrafficManifest?, migrations: [Migration],
                specCommits: [ColorName: String] = [:]) {
        self.name = name
        self.environment = environment
        self.traffic = traffic
        self.migrations = migrations
        self.specCommits = specCommits
    }

    /// The route the commit asks for.
    public var route: Route { traffic?.route ?? .none }

    /// Index of a migration by name in `migrations`.
    public func migrationIndex(_ name: String) -> Int? { migrations.firstIndex { $0.name == name } }
}

/// Everything a commit asks for.
public struct DesiredState: Codable, Hashable, Sendable {
    public var commit: String
    public var apps: [String: AppManifest]

    public init(commit: String, apps: [String: AppManifest]) {
        self.commit = commit
        self.apps = apps
    }
}

/// What the loader needs from a commit's tree (the Git module provides one; tests may use a dictionary).
public protocol ManifestTree {
    /// Names of the entries of a directory, each flagged as a directory or not; nil when there is none.
    func entries(of directory: String) throws -> [(name: String, isDirectory: Bool)]?
    /// Bytes of a file; nil when there is none.
    func contents(of path: String) throws -> [UInt8]?
    /// A stable id of a file's content (the git blob id).
    func contentID(of path: String) throws -> String?
}
