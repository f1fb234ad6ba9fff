import NIOCore

/// How long the router waits for clients and colors.
public struct RouterTimeouts: Sendable, Equatable {
    /// From the first byte of a request head to its end; then 408 and the connection closes.
    public var requestHead: TimeAmount
    /// A keep-alive client connection with nothing in flight is closed after this long.
    public var idleClient: TimeAmount
    /// From a request's last byte to the first byte of the color's answer; then 504.
    public var upstreamResponse: TimeAmount

    public init(requestHead: TimeAmount = .seconds(10), idleClient: TimeAmount = .seconds(75),
                upstreamResponse: TimeAmount = .seconds(60)) {
        self.requestHead = requestHead
        self.idleClient = idleClient
        self.upstreamResponse = upstreamResponse
    }

    /// The sweep period: a fifth of the shortest timeout, between 20 ms and 1 s.
    var sweepInterval: TimeAmount {
        let shortest = min(requestHead, idleClient, upstreamResponse)
        return max(.milliseconds(20), min(.seconds(1), .nanoseconds(shortest.nanoseconds / 5)))
    }

    /// Each timeout as a number of sweeps, at least one.
    var ticks: (requestHead: Int, idleClient: Int, upstreamResponse: Int) {
        let interval = sweepInterval.nanoseconds
        func count(_ amount: TimeAmount) -> Int { max(1, Int((amount.nanoseconds + interval - 1) / interval)) }
        return (count(requestHead), count(idleClient), count(upstreamResponse))
    }
}

/// The identity of one listening socket, which the client connections it accepted keep.
final class ListenerTag: Sendable {}

/// The client connections of one event loop and a coarse clock for their timeouts. Connections note the
/// current tick when something happens (a load and a store, no clock read per request); every sweep the
/// clock advances and each connection checks its own deadlines.
final class ConnectionSweeper {
    /// Sweeps so far.
    private(set) var tick = 0
    let timeouts: RouterTimeouts
    let ticks: (requestHead: Int, idleClient: Int, upstreamResponse: Int)
    private let eventLoop: any EventLoop
    private var connections: [ObjectIdentifier: ProxyHandler] = [:]
    private var task: RepeatedTask?

    init(eventLoop: any EventLoop, timeouts: RouterTimeouts) {
        self.eventLoop = eventLoop
        self.timeouts = timeouts
        ticks = timeouts.ticks
    }

    func register(_ connection: ProxyHandler) {
        connections[ObjectIdentifier(connection)] = connection
        guard task == nil else { return }
        let interval = timeouts.sweepInterval
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        task = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in bound.value.sweep() }
    }

    func unregister(_ connection: ProxyHandler) {
        connections.removeValue(forKey: ObjectIdentifier(connection))
        if connections.isEmpty {
            task?.cancel()
            task = nil
        }
    }

    /// The listener `tag` was replaced: its connections on this loop close after their current response.
    func retire(_ tag: ListenerTag) {
        for connection in Array(connections.values) where connection.listener === tag { connection.listenerRetired() }
    }

    private func sweep() {
        tick += 1
        // A check may close its connection, which unregisters it: iterate over a copy.
        for connection in Array(connections.values) { connection.checkDeadlines(tick: tick) }
    }
}
