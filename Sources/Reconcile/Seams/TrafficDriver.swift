import Manifest
import Planning

/// A route as the traffic driver serves it.
public struct ServedRoute: Hashable, Sendable {
    public struct Upstream: Hashable, Sendable {
        public var port: Int
        /// False while the color is down (dead, restarting): it gets no traffic whatever its weight.
        public var up: Bool

        public init(port: Int, up: Bool = true) {
            self.port = port
            self.up = up
        }
    }

    public var listen: ListenAddress
    public var upstreams: [ColorName: Upstream]
    public var weights: [ColorName: Int]
    /// TLS on the listen address; nil: plain HTTP.
    public var tls: TrafficTLS?
    /// Peers trusted to have set the forwarding fields; nil: loopback only.
    public var trustedForwarders: [String]?

    public init(listen: ListenAddress, upstreams: [ColorName: Upstream], weights: [ColorName: Int], tls: TrafficTLS? = nil,
                trustedForwarders: [String]? = nil) {
        self.listen = listen
        self.upstreams = upstreams
        self.weights = weights
        self.tls = tls
        self.trustedForwarders = trustedForwarders
    }

    /// The route traffic really follows: the weights of colors with an upstream that is up.
    public var effective: Route {
        Route(weights: weights.filter { upstreams[$0.key]?.up == true })
    }
}

/// Requests a driver has seen for one color.
public struct TrafficCounters: Hashable, Sendable {
    public var requests: Int
    public var inFlight: Int

    public init(requests: Int, inFlight: Int) {
        self.requests = requests
        self.inFlight = inFlight
    }
}

/// Whether the traffic driver can be asked anything.
public enum TrafficDriverHealth: Hashable, Sendable {
    /// It answers; a driver that runs as a process says which.
    case answering(pid: Int32?)
    /// Its process runs but does not answer: it may still forward traffic.
    case notAnswering
    /// Nothing runs.
    case down

    public var isAnswering: Bool {
        if case .answering = self { return true }
        return false
    }
}

/// What puts users' traffic on colors: routes, the counters draining needs, the driver's own health. Today
/// teal's own router process.
public protocol TrafficDriver: Sendable {
    /// Starts the driver when it does not run.
    func ensureRunning() async throws
    func health() async -> TrafficDriverHealth
    /// Every app's served route; throws when the driver cannot be asked.
    func routes() async throws -> [String: ServedRoute]
    func setRoute(app: String, _ route: ServedRoute) async throws
    func removeRoute(app: String) async throws
    /// Marks one color's upstream up or down without changing weights.
    func mark(app: String, color: ColorName, up: Bool) async throws
    /// Request counters per app and color.
    func counters() async throws -> [String: [ColorName: TrafficCounters]]
    /// Who holds `address` when it is not free to serve, nil when it is (a default in `ListenProbe`).
    func listenHolder(_ address: ListenAddress) async -> String?
}
