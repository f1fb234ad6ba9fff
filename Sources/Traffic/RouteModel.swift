import Foundation

/// An address the router listens on for one app's users.
public struct Endpoint: Codable, Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Whether a connection to `host:port` would reach this listen address: the same port on the same host, or
    /// on any loopback or local address when this one listens on all of them.
    func serves(host other: String, port otherPort: Int) -> Bool {
        guard port == otherPort else { return false }
        if host == other { return true }
        let wildcard: Set = ["0.0.0.0", "::", "[::]", ""]
        let loopback: Set = ["127.0.0.1", "::1", "[::1]"]
        if wildcard.contains(host) { return wildcard.contains(other) || loopback.contains(other) || other == "localhost" }
        return host == "localhost" && loopback.contains(other) || other == "localhost" && loopback.contains(host)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A color process the router can forward to.
public struct Upstream: Codable, Hashable, Sendable {
    public var host: String
    public var port: Int
    /// False while the color is known to be down: it gets no traffic until marked up again.
    public var up: Bool

    public init(host: String = "127.0.0.1", port: Int, up: Bool = true) {
        self.host = host
        self.port = port
        self.up = up
    }
}

/// A certificate chain and its private key, PEM files, for TLS on a listen address. The router loads them again
/// when either file changes.
public struct TLSFiles: Codable, Hashable, Sendable {
    public var certificate: String
    public var key: String

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }
}

/// Everything the router needs to serve one app.
public struct AppRoute: Codable, Hashable, Sendable {
    public var listen: Endpoint
    /// Color name → where that color listens.
    public var upstreams: [String: Upstream]
    /// Color name → share of new requests; colors without an up upstream are skipped.
    public var weights: [String: Int]
    /// Addresses or networks (`10.0.0.0/8`, `::1`) of peers trusted to have set `X-Forwarded-For`,
    /// `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded` already; from anyone else those fields are replaced.
    /// Nil: loopback only (a proxy on the same host). Empty: nobody.
    public var trustedForwarders: [String]?
    /// Terminate TLS (HTTP/1.1, ALPN `http/1.1`) on the listen address with these files; nil: plain HTTP.
    public var tls: TLSFiles?

    public init(listen: Endpoint, upstreams: [String: Upstream], weights: [String: Int], trustedForwarders: [String]? = nil,
                tls: TLSFiles? = nil) {
        self.listen = listen
        self.upstreams = upstreams
        self.weights = weights
        self.trustedForwarders = trustedForwarders
        self.tls = tls
    }

    /// Colors that may receive new requests now, with their weights.
    public var eligible: [(color: String, weight: Int, upstream: Upstream)] {
        weights.keys.sorted().compactMap { color in
            guard let weight = weights[color], weight > 0, let upstream = upstreams[color], upstream.up else { return nil }
            return (color, weight, upstream)
        }
    }
}

/// Request counters of one color of one app.
public struct UpstreamCounters: Codable, Hashable, Sendable {
    /// Requests forwarded and not yet answered completely.
    public var inFlight: Int
    /// Requests forwarded since the router started.
    public var requests: Int
    /// Requests that failed at the upstream (connect error or broken response).
    public var failures: Int

    public init(inFlight: Int = 0, requests: Int = 0, failures: Int = 0) {
        self.inFlight = inFlight
        self.requests = requests
        self.failures = failures
    }
}

/// One line of the admin protocol, client to router.
public struct AdminRequest: Codable, Sendable {
    public enum Operation: String, Codable, Sendable {
        /// Is the router there? Answers with its pid.
        case ping
        /// Replace one app's route (`app`, `route`).
        case set
        /// Stop serving one app (`app`).
        case remove
        /// Mark one color of an app up or down (`app`, `color`, `up`).
        case mark
        /// Every app's route.
        case routes
        /// Counters per app and color (optionally one `app`).
        case stats
        /// Stop the router.
        case shutdown
    }

    public var op: Operation
    public var app: String?
    public var route: AppRoute?
    public var color: String?
    public var up: Bool?

    public init(op: Operation, app: String? = nil, route: AppRoute? = nil, color: String? = nil, up: Bool? = nil) {
        self.op = op
        self.app = app
        self.route = route
        self.color = color
        self.up = up
    }
}

/// One line of the admin protocol, router to client.
public struct AdminResponse: Codable, Sendable {
    public var ok: Bool
    public var error: String?
    public var pid: Int32?
    public var routes: [String: AppRoute]?
    public var stats: [String: [String: UpstreamCounters]]?

    public init(ok: Bool, error: String? = nil, pid: Int32? = nil, routes: [String: AppRoute]? = nil,
                stats: [String: [String: UpstreamCounters]]? = nil) {
        self.ok = ok
        self.error = error
        self.pid = pid
        self.routes = routes
        self.stats = stats
    }

    public static func failure(_ message: String) -> AdminResponse { AdminResponse(ok: false, error: message) }
}

/// Where a data dir's router keeps its files.
public struct RouterPaths: Sendable {
    public var dataDir: String

    public init(dataDir: String) { self.dataDir = dataDir }

    /// The admin unix socket.
    public var socket: String { "\(dataDir)/router.sock" }
    /// Routes, restored when the router restarts.
    public var routes: String { "\(dataDir)/routes.json" }
    /// Held (flock) by the running router: one router per data dir.
    public var lock: String { "\(dataDir)/router.lock" }
    /// The running router's pid.
    public var pid: String { "\(dataDir)/router.pid" }
    /// The router's own log when teal starts it.
    public var log: String { "\(dataDir)/logs/router.log" }
}
