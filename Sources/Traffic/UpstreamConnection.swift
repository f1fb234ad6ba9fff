import NIOCore
import NIOHTTP1
import NIOPosix

/// Where an upstream connection goes; connections are pooled by this key.
struct UpstreamKey: Hashable, Sendable {
    var host: String
    var port: Int
}

/// What an upstream connection reports to the client connection it currently serves.
protocol UpstreamDelegate: AnyObject {
    func upstreamResponseHead(_ head: HTTPResponseHead)
    func upstreamResponseBody(_ buffer: ByteBuffer)
    func upstreamResponseEnd(reusable: Bool)
    func upstreamReadComplete()
    func upstreamFailed(_ error: any Error)
    func upstreamWritabilityChanged(writable: Bool)
}

/// The connection broke before the response was complete.
struct UpstreamClosedError: Error {}

/// One keep-alive HTTP/1.1 connection to a color, serving one request at a time.
final class UpstreamConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let key: UpstreamKey
    /// The client connection whose request this connection carries now; nil while idle. Cleared at the end
    /// of every response, on close and on failure, so it never outlives the exchange.
    var delegate: (any UpstreamDelegate)?
    /// False once the connection closed or failed; it is then never reused.
    private(set) var isUsable = true
    private var context: ChannelHandlerContext?
    private var responseKeepAlive = true

    init(key: UpstreamKey) { self.key = key }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Writes one request part; nothing reaches the socket before `flush()`.
    func send(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() { context?.flush() }

    func setReading(_ enabled: Bool) {
        guard let channel = context?.channel else { return }
        try? channel.syncOptions?.setOption(.autoRead, value: enabled)
    }

    func close() {
        isUsable = false
        delegate = nil
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.status.code < 200 { return }
            responseKeepAlive = head.isKeepAlive
            delegate?.upstreamResponseHead(head)
        case .body(let buffer):
            delegate?.upstreamResponseBody(buffer)
        case .end:
            let delegate = self.delegate
            self.delegate = nil
            delegate?.upstreamResponseEnd(reusable: responseKeepAlive && isUsable)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(writable: context.channel.isWritable)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(UpstreamClosedError())
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    private func fail(_ error: any Error) {
        isUsable = false
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamFailed(error)
    }
}

/// Idle upstream connections of one event loop, reused across client connections on that loop.
final class UpstreamPool {
    /// The idle connections to one key, most recently used last; a class so the pool changes it in place.
    private final class IdleList {
        var connections: [UpstreamConnection] = []
    }

    private let eventLoop: any EventLoop
    private var idle: [UpstreamKey: IdleList] = [:]
    private let maxIdlePerKey: Int

    init(eventLoop: any EventLoop, maxIdlePerKey: Int = 256) {
        self.eventLoop = eventLoop
        self.maxIdlePerKey = maxIdlePerKey
    }

    /// An idle, still open connection to `key`, if there is one.
    func take(_ key: UpstreamKey) -> UpstreamConnection? {
        guard let list = idle[key] else { return nil }
        while let connection = list.connections.popLast() {
            if connection.isUsable { return connection }
        }
        return nil
    }

    /// Keeps a connection whose exchange finished cleanly for the next request.
    func put(_ connection: UpstreamConnection) {
        guard connection.isUsable else { return }
        let list: IdleList
        if let existing = idle[connection.key] {
            list = existing
        } else {
            list = IdleList()
            idle[connection.key] = list
        }
        if list.connections.count >= maxIdlePerKey {
            list.connections.removeAll { !$0.isUsable }
            guard list.connections.count < maxIdlePerKey else {
                connection.close()
                return
            }
        }
        list.connections.append(connection)
    }

    /// Opens a new connection on this pool's event loop; the channel's last handler is its `UpstreamConnection`.
    func connect(_ key: UpstreamKey) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(3))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Request heads are built from parsed client heads: no second validation on the way out.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnection(key: key))
                }
            }
            .connect(host: key.host, port: key.port)
    }

    func closeAll() {
        for list in idle.values {
            for connection in list.connections { connection.close() }
        }
        idle.removeAll()
    }
}

/// One `UpstreamPool` per event loop of the router's group, created on first use on that loop.
final class UpstreamPools: Sendable {
    private let pools: [ObjectIdentifier: NIOLoopBoundBox<UpstreamPool?>]

    init(group: MultiThreadedEventLoopGroup) {
        var pools: [ObjectIdentifier: NIOLoopBoundBox<UpstreamPool?>] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeEmptyBox(valueType: UpstreamPool.self, eventLoop: loop)
        }
        self.pools = pools
    }

    /// The pool of `eventLoop`; call only on that loop.
    func pool(for eventLoop: any EventLoop) -> UpstreamPool {
        let box = pools[ObjectIdentifier(eventLoop)]!
        if let pool = box.value { return pool }
        let pool = UpstreamPool(eventLoop: eventLoop)
        box.value = pool
        return pool
    }
}
