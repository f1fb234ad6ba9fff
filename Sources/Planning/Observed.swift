import Manifest

/// What teal knows is running, from its state store and live probes.
public struct ObservedState: Codable, Hashable, Sendable {
    public var apps: [String: ObservedApp]

    public init(apps: [String: ObservedApp] = [:]) { self.apps = apps }
}

public struct ObservedApp: Codable, Hashable, Sendable {
    public var colors: [ColorName: ObservedColor]
    /// The route the router serves now.
    public var route: Route
    /// The address the router serves the app on, when it has a route for it.
    public var listen: ListenAddress?
    /// The app database's migration history; nil when the database is not there yet.
    public var schema: ObservedSchema
    /// The desired listen address is held by another process (its description), found before anything starts.
    public var listenHeldBy: String?
    /// The TLS files and trusted forwarders the router serves the listen address with (when it has a route).
    public var tls: TrafficTLS?
    public var trustedForwarders: [String]?

    public init(colors: [ColorName: ObservedColor] = [:], route: Route = .none, schema: ObservedSchema = ObservedSchema()) {
        self.colors = colors
        self.route = route
        self.schema = schema
    }
}

/// A color process teal started.
public struct ObservedColor: Codable, Hashable, Sendable {
    public var spec: ColorSpec
    /// The commit the running copy was materialised from.
    public var specCommit: String
    /// The process is alive.
    public var running: Bool
    /// Its health check passes.
    public var healthy: Bool

    public init(spec: ColorSpec, specCommit: String, running: Bool = true, healthy: Bool = true) {
        self.spec = spec
        self.specCommit = specCommit
        self.running = running
        self.healthy = healthy
    }
}

/// A migration as the app database records it.
public struct AppliedMigration: Codable, Hashable, Sendable {
    public var name: String
    public var checksum: String

    public init(name: String, checksum: String) {
        self.name = name
        self.checksum = checksum
    }
}

/// The linear migration history of one database: completed ones, then at most one in flight.
public struct ObservedSchema: Codable, Hashable, Sendable {
    public var completed: [AppliedMigration]
    public var inFlight: AppliedMigration?
    /// The in-flight migration's start was cut short during its backfill: it must be started again
    /// (the engine resumes it) before a color may rely on it.
    public var inFlightBackfilling: Bool
    /// The last completed migration can be made in flight again, its old shape back with today's rows (what its
    /// complete put aside is still kept: PostgreSQL within the retention window). False where a complete is final.
    public var lastCompletedReopenable: Bool
    /// When it cannot be: why (for the refusal's hint); nil when the database does not say.
    public var lastCompletedFinalBecause: String?
    /// The last completed migration's reopen was cut off half-way: a reopen finishes it (when its old shape is
    /// still wanted), or a complete undoes it (when not). Nothing else may happen on the database before.
    public var lastCompletedReopening: Bool

    public init(completed: [AppliedMigration] = [], inFlight: AppliedMigration? = nil, inFlightBackfilling: Bool = false,
                lastCompletedReopenable: Bool = false, lastCompletedFinalBecause: String? = nil, lastCompletedReopening: Bool = false) {
        self.completed = completed
        self.inFlight = inFlight
        self.inFlightBackfilling = inFlightBackfilling
        self.lastCompletedReopenable = lastCompletedReopenable
        self.lastCompletedFinalBecause = lastCompletedFinalBecause
        self.lastCompletedReopening = lastCompletedReopening
    }

    private enum CodingKeys: String, CodingKey {
        case completed, inFlight, inFlightBackfilling, lastCompletedReopenable, lastCompletedFinalBecause, lastCompletedReopening
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        completed = try c.decode([AppliedMigration].self, forKey: .completed)
        inFlight = try c.decodeIfPresent(AppliedMigration.self, forKey: .inFlight)
        inFlightBackfilling = try c.decodeIfPresent(Bool.self, forKey: .inFlightBackfilling) ?? false
        lastCompletedReopenable = try c.decodeIfPresent(Bool.self, forKey: .lastCompletedReopenable) ?? false
        lastCompletedFinalBecause = try c.decodeIfPresent(String.self, forKey: .lastCompletedFinalBecause)
        lastCompletedReopening = try c.decodeIfPresent(Bool.self, forKey: .lastCompletedReopening) ?? false
    }
}
