import NIOCore
import Synchronization

/// Live counters of one color of one app, updated by the proxy without locking.
final class UpstreamStats: Sendable {
    let inFlight = Atomic<Int>(0)
    let requests = Atomic<Int>(0)
    let failures = Atomic<Int>(0)

    var counters: UpstreamCounters {
        UpstreamCounters(inFlight: inFlight.load(ordering: .relaxed), requests: requests.load(ordering: .relaxed),
                         failures: failures.load(ordering: .relaxed))
    }
}

/// Where one request goes: chosen when its head arrives, fixed until it completes.
/// A class, so that handing it to a request costs one reference count, not a copy of its strings.
final class ProxyTarget: Sendable {
    let color: String
    let key: UpstreamKey
    let stats: UpstreamStats

    init(color: String, key: UpstreamKey, stats: UpstreamStats) {
        self.color = color
        self.key = key
        self.stats = stats
    }
}

/// The current route of one app. A listener holds its app's slot for its whole life, so a request
/// reads the route with one uncontended lock and no lookup by name; a switch replaces the slot's
/// entry atomically.
final class RouteSlot: Sendable {
    struct Entry {
        var route: AppRoute
        var eligible: [(weight: Int, target: ProxyTarget)]
        var totalWeight: Int
        var trusted: TrustedPeers
    }

    /// A client connection tunnelled to a color after `101 Switching Protocols`.
    private struct Tunnel {
        var color: String
        var key: UpstreamKey
        var channel: any Channel
    }

    private let entry = Mutex<Entry?>(nil)
    private let tunnels = Mutex<[ObjectIdentifier: Tunnel]>([:])

    /// Installs a new route. Tunnels to a color the new route no longer has (or has at another address) are
    /// closed: a switch of traffic leaves them open, removing the color after its drain ends them.
    fileprivate func replace(with new: Entry?) {
        entry.withLock { $0 = new }
        let doomed = tunnels.withLock { tunnels in
            tunnels.filter { _, tunnel in
                guard let upstream = new?.route.upstreams[tunnel.color] else { return true }
                return UpstreamKey(host: upstream.host, port: upstream.port) != tunnel.key
            }
        }
        for (_, tunnel) in doomed { tunnel.channel.close(promise: nil) }
    }

    /// Notes a tunnel of this app's client connection `id` until `removeTunnel`.
    func addTunnel(id: ObjectIdentifier, color: String, key: UpstreamKey, channel: any Channel) {
        tunnels.withLock { $0[id] = Tunnel(color: color, key: key, channel: channel) }
    }

    func removeTunnel(id: ObjectIdentifier) {
        _ = tunnels.withLock { $0.removeValue(forKey: id) }
    }

    /// Open tunnels per color.
    var tunnelCounts: [String: Int] {
        tunnels.withLock { tunnels in
            var counts: [String: Int] = [:]
            for tunnel in tunnels.values { counts[tunnel.color, default: 0] += 1 }
            return counts
        }
    }

    var route: AppRoute? { entry.withLock { $0?.route } }

    /// Whether a client at `address` is trusted to have set the forwarding fields already.
    func trusts(_ address: String?) -> Bool {
        entry.withLock { $0?.trusted.contains(address) ?? false }
    }

    /// Picks the upstream for a new request, nil when no color may take it.
    func select() -> ProxyTarget? {
        entry.withLock { entry in
            guard let entry, entry.totalWeight > 0 else { return nil }
            if entry.eligible.count == 1 { return entry.eligible[0].target }
            var pick = Int.random(in: 0..<entry.totalWeight)
            for candidate in entry.eligible {
                if pick < candidate.weight { return candidate.target }
                pick -= candidate.weight
            }
            return nil
        }
    }
}

/// The routes every listener reads per request. A switch replaces an app's entry atomically:
/// requests that already chose a target keep it, the next request sees the new route.
final class RouteTable: Sendable {
    private struct State {
        /// Slots are kept once made, so connections accepted before a remove and a later set see the new route.
        var slots: [String: RouteSlot] = [:]
        var routed: Set<String> = []
        var stats: [String: [String: UpstreamStats]] = [:]
    }

    private let state = Mutex(State())

    /// The slot a listener of `app` reads its route from.
    func slot(app: String) -> RouteSlot {
        state.withLock { Self.slot(app: app, in: &$0) }
    }

    func set(app: String, route: AppRoute) {
        // Checked by the router before: an entry that does not parse trusts nobody.
        let trusted = route.trustedForwarders.map { (try? TrustedPeers($0)) ?? TrustedPeers.nobody } ?? .loopback
        state.withLock { state in
            for color in route.upstreams.keys { _ = Self.stats(app: app, color: color, in: &state) }
            let eligible = route.eligible.map { candidate in
                (weight: candidate.weight,
                 target: ProxyTarget(color: candidate.color,
                                     key: UpstreamKey(host: candidate.upstream.host, port: candidate.upstream.port),
                                     stats: Self.stats(app: app, color: candidate.color, in: &state)))
            }
            let entry = RouteSlot.Entry(route: route, eligible: eligible, totalWeight: eligible.reduce(0) { $0 + $1.weight },
                                        trusted: trusted)
            Self.slot(app: app, in: &state).replace(with: entry)
            state.routed.insert(app)
        }
    }

    func remove(app: String) {
        state.withLock { state in
            state.slots[app]?.replace(with: nil)
            state.routed.remove(app)
        }
    }

    func route(app: String) -> AppRoute? {
        state.withLock { $0.routed.contains(app) ? $0.slots[app]?.route : nil }
    }

    var routes: [String: AppRoute] {
        state.withLock { state in
            var routes: [String: AppRoute] = [:]
            for app in state.routed { routes[app] = state.slots[app]?.route }
            return routes
        }
    }

    /// Picks the upstream for a new request of `app`, nil when no color may take it.
    func select(app: String) -> ProxyTarget? {
        slot(app: app).select()
    }

    func counters(app: String?) -> [String: [String: UpstreamCounters]] {
        state.withLock { state in
            state.stats.filter { app == nil || $0.key == app }.mapValues { $0.mapValues(\.counters) }
        }
    }

    private static func slot(app: String, in state: inout State) -> RouteSlot {
        if let existing = state.slots[app] { return existing }
        let created = RouteSlot()
        state.slots[app] = created
        return created
    }

    private static func stats(app: String, color: String, in state: inout State) -> UpstreamStats {
        if let existing = state.stats[app]?[color] { return existing }
        let created = UpstreamStats()
        state.stats[app, default: [:]][color] = created
        return created
    }
}
