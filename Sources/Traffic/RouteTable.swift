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
struct ProxyTarget: Sendable {
    var color: String
    var host: String
    var port: Int
    var stats: UpstreamStats
}

/// The routes every listener reads per request. A switch replaces an app's entry atomically:
/// requests that already chose a target keep it, the next request sees the new route.
final class RouteTable: Sendable {
    private struct Entry {
        var route: AppRoute
        var eligible: [(weight: Int, target: ProxyTarget)]
        var totalWeight: Int
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let stats = Mutex<[String: [String: UpstreamStats]]>([:])

    func set(app: String, route: AppRoute) {
        for color in route.upstreams.keys { _ = statsFor(app: app, color: color) }
        let eligible = route.eligible.map { candidate in
            (weight: candidate.weight,
             target: ProxyTarget(color: candidate.color, host: candidate.upstream.host, port: candidate.upstream.port,
                                 stats: statsFor(app: app, color: candidate.color)))
        }
        let entry = Entry(route: route, eligible: eligible, totalWeight: eligible.reduce(0) { $0 + $1.weight })
        entries.withLock { $0[app] = entry }
    }

    func remove(app: String) {
        entries.withLock { _ = $0.removeValue(forKey: app) }
    }

    func route(app: String) -> AppRoute? {
        entries.withLock { $0[app]?.route }
    }

    var routes: [String: AppRoute] {
        entries.withLock { $0.mapValues(\.route) }
    }

    /// Picks the upstream for a new request of `app`, nil when no color may take it.
    func select(app: String) -> ProxyTarget? {
        entries.withLock { entries in
            guard let entry = entries[app], entry.totalWeight > 0 else { return nil }
            if entry.eligible.count == 1 { return entry.eligible[0].target }
            var pick = Int.random(in: 0..<entry.totalWeight)
            for candidate in entry.eligible {
                if pick < candidate.weight { return candidate.target }
                pick -= candidate.weight
            }
            return nil
        }
    }

    func counters(app: String?) -> [String: [String: UpstreamCounters]] {
        stats.withLock { all in
            all.filter { app == nil || $0.key == app }.mapValues { $0.mapValues(\.counters) }
        }
    }

    private func statsFor(app: String, color: String) -> UpstreamStats {
        stats.withLock { all in
            if let existing = all[app]?[color] { return existing }
            let created = UpstreamStats()
            all[app, default: [:]][color] = created
            return created
        }
    }
}
