import Foundation
import Manifest
import Planning
import Reconcile
import Runtime
import Traffic

/// teal's own router process (one per data dir), driven over its admin socket. A router that does not answer
/// is a transient failure; a request it refuses is permanent, unless it could not bind a listen address that is
/// still held (a port not free yet).
public struct RouterTrafficDriver: TrafficDriver {
    public let launcher: RouterLauncher

    public init(dataDir: String, command: [String]? = nil) {
        launcher = RouterLauncher(dataDir: dataDir, command: command)
    }

    var client: RouterClient { launcher.client }

    public func ensureRunning() async throws {
        do {
            try await launcher.ensureRunning()
        } catch {
            throw ReconcileFailure.transient("\(error)")
        }
    }

    public func health() async -> TrafficDriverHealth {
        let client = client
        if let pid = await offThePool({ client.ping() }) { return .answering(pid: pid) }
        return launcher.processIsRunning ? .notAnswering : .down
    }

    public func routes() async throws -> [String: ServedRoute] {
        try await send(AdminRequest(op: .routes)).routes.map { $0.compactMapValues(ServedRoute.init) } ?? [:]
    }

    public func setRoute(app: String, _ route: ServedRoute) async throws {
        var upstreams: [String: Upstream] = [:]
        for (color, upstream) in route.upstreams { upstreams[color.rawValue] = Upstream(port: upstream.port, up: upstream.up) }
        let appRoute = AppRoute(listen: Endpoint(host: route.listen.host, port: route.listen.port), upstreams: upstreams,
                                weights: Dictionary(uniqueKeysWithValues: route.weights.map { ($0.key.rawValue, $0.value) }),
                                trustedForwarders: route.trustedForwarders,
                                tls: route.tls.map { TLSFiles(certificate: $0.certificate, key: $0.key) })
        try await send(AdminRequest(op: .set, app: app, route: appRoute))
    }

    public func removeRoute(app: String) async throws {
        try await send(AdminRequest(op: .remove, app: app))
    }

    public func mark(app: String, color: ColorName, up: Bool) async throws {
        try await send(AdminRequest(op: .mark, app: app, color: color.rawValue, up: up))
    }

    public func counters() async throws -> [String: [ColorName: TrafficCounters]] {
        let stats = try await send(AdminRequest(op: .stats)).stats ?? [:]
        return stats.mapValues { colors in
            var result: [ColorName: TrafficCounters] = [:]
            for (name, counter) in colors {
                if let color = ColorName(rawValue: name) { result[color] = TrafficCounters(requests: counter.requests, inFlight: counter.inFlight) }
            }
            return result
        }
    }

    @discardableResult
    private func send(_ request: AdminRequest) async throws -> AdminResponse {
        let client = client
        let response: AdminResponse
        do {
            response = try await offThePool(throwing: { try client.send(request) })
        } catch {
            throw ReconcileFailure.transient("the router did not answer: \(error)")
        }
        guard response.ok else {
            let message = "router: \(response.error ?? "request failed")"
            if message.localizedCaseInsensitiveContains("in use") { throw ReconcileFailure.transient(message) }
            throw ReconcileFailure.permanent(message)
        }
        return response
    }
}

extension ServedRoute {
    /// The router's route for an app, in the pipeline's terms (colors it does not know are left out).
    init?(_ route: AppRoute) {
        let listen = ListenAddress(host: route.listen.host, port: route.listen.port)
        var upstreams: [ColorName: Upstream] = [:]
        for (name, upstream) in route.upstreams {
            if let color = ColorName(rawValue: name) { upstreams[color] = Upstream(port: upstream.port, up: upstream.up) }
        }
        var weights: [ColorName: Int] = [:]
        for (name, weight) in route.weights {
            if let color = ColorName(rawValue: name) { weights[color] = weight }
        }
        self.init(listen: listen, upstreams: upstreams, weights: weights,
                  tls: route.tls.map { TrafficTLS(certificate: $0.certificate, key: $0.key) }, trustedForwarders: route.trustedForwarders)
    }
}
