import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Why the router could not do what was asked.
public struct RouterError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// The traffic router of one data dir: serves each app's listen address, forwards to its colors,
/// and takes orders on a unix socket. Routes survive restarts in `routes.json`.
public actor Router {
    public nonisolated let paths: RouterPaths
    private let group: MultiThreadedEventLoopGroup
    private let ownsGroup: Bool
    private let table = RouteTable()
    private let pools: UpstreamPools
    private let limits: RouterLimits
    private let connections: ConnectionCount
    private let logger: Logger
    /// One app's listening socket, with its TLS context when it terminates TLS.
    private struct Listener {
        var endpoint: Endpoint
        var channel: any Channel
        var tls: TLSContextSource?
        /// What the connections it accepted know it by.
        var tag: ListenerTag
    }

    private var listeners: [String: Listener] = [:]
    private var tlsWatch: Task<Void, Never>?
    private var adminChannel: (any Channel)?
    private var lockDescriptor: Int32 = -1
    private var stopped = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// A router for `dataDir` on `group`, or else on a group of its own with `eventLoops` threads (default: one per core).
    public init(dataDir: String, group: MultiThreadedEventLoopGroup? = nil, eventLoops: Int? = nil,
                timeouts: RouterTimeouts = RouterTimeouts(), limits: RouterLimits = RouterLimits(),
                logger: Logger = Logger(label: "teal.router")) {
        paths = RouterPaths(dataDir: dataDir)
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: max(1, eventLoops ?? System.coreCount))
        ownsGroup = group == nil
        pools = UpstreamPools(group: self.group, timeouts: timeouts)
        self.limits = limits
        connections = ConnectionCount(limit: limits.maxClientConnections ?? 0)
        self.logger = logger
    }

    /// Takes the data dir's router lock, restores saved routes and opens the admin socket.
    public func start() async throws {
        try FileManager.default.createDirectory(atPath: paths.dataDir, withIntermediateDirectories: true)
        try takeLock()
        let descriptors = Self.raiseDescriptorLimit()
        connections.setLimit(limits.maxClientConnections ?? max(16, (descriptors - 64) / 2))
        logger.info("limits", metadata: ["open files": "\(descriptors)", "client connections": "\(connections.limit)"])
        for (app, route) in loadSavedRoutes().sorted(by: { $0.key < $1.key }) {
            do {
                try await install(app: app, route: route)
                logger.info("restored route", metadata: ["app": "\(app)", "listen": "\(route.listen)"])
            } catch {
                logger.error("could not restore route", metadata: ["app": "\(app)", "error": "\(error)"])
            }
        }
        let router = self
        adminChannel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder()))
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(router: router))
                }
            }
            .bind(unixDomainSocketPath: paths.socket, cleanupExistingSocketFile: true)
            .get()
        chmod(paths.socket, 0o600)
        logger.info("router running", metadata: ["pid": "\(getpid())", "socket": "\(paths.socket)"])
    }

    /// Returns once the router has stopped (an admin `shutdown` or `stop()`).
    public func waitUntilStopped() async {
        if stopped { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    /// Closes every listener and the admin socket, and releases the lock.
    public func stop() async {
        guard !stopped else { return }
        stopped = true
        tlsWatch?.cancel()
        tlsWatch = nil
        for (_, listener) in listeners { try? await listener.channel.close() }
        listeners.removeAll()
        try? await adminChannel?.close()
        adminChannel = nil
        unlink(paths.socket)
        unlink(paths.pid)
        if lockDescriptor >= 0 {
            close(lockDescriptor)
            lockDescriptor = -1
        }
        if ownsGroup { try? await group.shutdownGracefully() }
        for waiter in waiters { waiter.resume() }
        waiters.removeAll()
    }

    /// Replaces one app's route and saves the routes.
    public func set(app: String, route: AppRoute) async throws {
        try await install(app: app, route: route)
        try save()
    }

    /// Stops serving one app.
    public func remove(app: String) async throws {
        table.remove(app: app)
        if let listener = listeners.removeValue(forKey: app) { try? await listener.channel.close() }
        try save()
    }

    /// Marks one color of an app up or down without touching the rest of its route.
    public func mark(app: String, color: String, up: Bool) throws {
        guard var route = table.route(app: app) else { throw RouterError("no route for app \(app)") }
        guard route.upstreams[color] != nil else { throw RouterError("app \(app) has no upstream for \(color)") }
        route.upstreams[color]?.up = up
        table.set(app: app, route: route)
        try save()
    }

    public var routes: [String: AppRoute] { table.routes }

    public func counters(app: String? = nil) -> [String: [String: UpstreamCounters]] { table.counters(app: app) }

    /// Client connections open now, over every listen address.
    public var openClientConnections: Int { connections.current }

    /// Open upgrade tunnels of one app, per color.
    public func tunnels(app: String) -> [String: Int] { table.slot(app: app).tunnelCounts }

    /// Raises the soft limit on open files to the hard limit (a proxy needs two per connection) and returns it.
    static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }

    /// Answers one admin request.
    func handle(_ request: AdminRequest) async -> AdminResponse {
        do {
            switch request.op {
            case .ping:
                return AdminResponse(ok: true, pid: getpid())
            case .set:
                guard let app = request.app, let route = request.route else { return .failure("set needs app and route") }
                try await set(app: app, route: route)
                return AdminResponse(ok: true)
            case .remove:
                guard let app = request.app else { return .failure("remove needs app") }
                try await remove(app: app)
                return AdminResponse(ok: true)
            case .mark:
                guard let app = request.app, let color = request.color, let up = request.up else {
                    return .failure("mark needs app, color and up")
                }
                try mark(app: app, color: color, up: up)
                return AdminResponse(ok: true)
            case .routes:
                return AdminResponse(ok: true, routes: table.routes)
            case .stats:
                return AdminResponse(ok: true, stats: table.counters(app: request.app))
            case .shutdown:
                Task { await self.stop() }
                return AdminResponse(ok: true, pid: getpid())
            }
        } catch {
            return .failure("\(error)")
        }
    }

    private func install(app: String, route: AppRoute) async throws {
        guard !stopped else { throw RouterError("the router is stopping") }
        if let trusted = route.trustedForwarders { _ = try TrustedPeers(trusted) }
        if let clash = listeners.first(where: { $0.key != app && $0.value.endpoint == route.listen }) {
            throw RouterError("\(route.listen) is already the listen address of app \(clash.key)")
        }
        let own = [route.listen] + listeners.filter { $0.key != app }.map(\.value.endpoint)
        for (color, upstream) in route.upstreams.sorted(by: { $0.key < $1.key }) {
            if let loop = own.first(where: { $0.serves(host: upstream.host, port: upstream.port) }) {
                throw RouterError("upstream \(color) of \(app) is \(upstream.host):\(upstream.port), the router's own listen address \(loop): it would forward to itself")
            }
        }
        if let current = listeners[app], current.endpoint == route.listen, current.tls?.files == route.tls {
            table.set(app: app, route: route)
            return
        }
        let tls = try route.tls.map { files in
            do {
                return try TLSContextSource(files: files)
            } catch {
                throw RouterError("cannot serve TLS on \(route.listen) for \(app): \(error)")
            }
        }
        var old = listeners[app]
        var retiring: ListenerTag?
        if let current = old, current.endpoint == route.listen {
            // Only TLS changed: the address must be free before it is bound again.
            try? await current.channel.close()
            retiring = current.tag
            old = nil
        } else if let current = old, current.tls?.files != route.tls {
            // Moved and TLS changed: connections of the old address were accepted under the old TLS setting.
            retiring = current.tag
        }
        let tag = ListenerTag()
        let channel: any Channel
        do {
            channel = try await bind(app: app, endpoint: route.listen, tls: tls, tag: tag)
        } catch {
            throw RouterError("cannot listen on \(route.listen) for \(app): \(error)")
        }
        table.set(app: app, route: route)
        listeners[app] = Listener(endpoint: route.listen, channel: channel, tls: tls, tag: tag)
        if let old { try? await old.channel.close() }
        // Connections accepted under the previous TLS setting (plain ones once TLS is on) end after their current response.
        if let retiring { await retire(retiring) }
        if tls != nil { watchTLSFiles() }
    }

    /// Once a second, every TLS listener loads its files again if they changed.
    private func watchTLSFiles() {
        guard tlsWatch == nil else { return }
        let logger = self.logger
        tlsWatch = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                guard let sources = await self?.tlsSources() else { return }
                for source in sources { source.reloadIfChanged(logger: logger) }
            }
        }
    }

    private func tlsSources() -> [TLSContextSource] { listeners.values.compactMap(\.tls) }

    /// Tells every client connection `tag`'s listener accepted that it is gone: each closes once its current
    /// response is complete, an idle one at once. Returns when every event loop has done so.
    private func retire(_ tag: ListenerTag) async {
        let pools = self.pools
        let done = group.makeIterator().map { loop in
            loop.submit { pools.pool(for: loop).sweeper.retire(tag) }
        }
        for future in done { try? await future.get() }
    }

    private func bind(app: String, endpoint: Endpoint, tls: TLSContextSource?, tag: ListenerTag) async throws -> any Channel {
        let slot = table.slot(app: app)
        let pools = self.pools
        let limits = self.limits
        let connections = self.connections
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let admitted = connections.admit()
                    channel.closeFuture.whenComplete { _ in connections.closed() }
                    guard admitted else {
                        try channel.pipeline.syncOperations.addHandler(OverloadHandler())
                        return
                    }
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context)) }
                    let proxy = ProxyHandler(app: app, slot: slot, pool: pools.pool(for: channel.eventLoop), limits: limits,
                                             scheme: tls == nil ? "http" : "https", listener: tag)
                    try channel.pipeline.syncOperations.addHandler(proxy)
                }
            }
            .bind(host: endpoint.host, port: endpoint.port)
            .get()
    }

    private func takeLock() throws {
        let fd = open(paths.lock, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RouterError("cannot open \(paths.lock): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            let other = (try? String(contentsOfFile: paths.pid, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            throw RouterError("a router already runs for \(paths.dataDir)\(other.map { " (pid \($0))" } ?? "")")
        }
        lockDescriptor = fd
        try "\(getpid())\n".write(toFile: paths.pid, atomically: true, encoding: .utf8)
    }

    private func loadSavedRoutes() -> [String: AppRoute] {
        guard let data = FileManager.default.contents(atPath: paths.routes) else { return [:] }
        do {
            return try JSONDecoder().decode(SavedRoutes.self, from: data).apps
        } catch {
            logger.error("ignoring unreadable routes file", metadata: ["path": "\(paths.routes)", "error": "\(error)"])
            return [:]
        }
    }

    private func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(SavedRoutes(apps: table.routes))
        try data.write(to: URL(fileURLWithPath: paths.routes), options: .atomic)
    }
}

/// The routes file.
struct SavedRoutes: Codable {
    var apps: [String: AppRoute]
}
