import NIOCore
import NIOPosix

/// Where an upstream connection goes; connections are pooled by this key.
struct UpstreamKey: Hashable, Sendable {
    var host: String
    var port: Int
}

/// What an upstream connection reports to the client connection it currently serves.
protocol UpstreamDelegate: AnyObject {
    /// The final response head (interim 1xx heads are skipped); `bytes` holds it from its first byte.
    func upstreamResponseHead(_ head: ResponseHead, bytes: UnsafeRawBufferPointer, fields: [HeadField], framing: BodyFraming)
    /// `101 Switching Protocols` to an upgrade request: every byte after this head is the new protocol's, passed
    /// on as `upstreamResponseBody`; the response ends when the upstream closes.
    func upstreamSwitchedProtocols(_ head: ResponseHead, bytes: UnsafeRawBufferPointer, fields: [HeadField])
    /// Body bytes, framing included unless the response is being de-chunked.
    func upstreamResponseBody(_ buffer: ByteBuffer)
    func upstreamResponseEnd(reusable: Bool)
    func upstreamReadComplete()
    func upstreamFailed(_ error: any Error)
    func upstreamWritabilityChanged(writable: Bool)
}

/// The connection broke before the response was complete.
struct UpstreamClosedError: Error {}

/// The upstream's response could not be read.
struct UpstreamProtocolError: Error, CustomStringConvertible {
    var description: String
}

/// One keep-alive HTTP/1.1 connection to a color, serving one request at a time. Request bytes go out as
/// the proxy hands them over; the response is read only as far as needed to find its head and its end, and
/// its body bytes are passed on as they arrived.
final class UpstreamConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// No request in flight: bytes arriving now make the connection unusable.
        case idle
        case head
        case length(Int)
        case chunked
        case untilClose
        /// After `101`: bytes both ways until either side closes.
        case tunnel
    }

    let key: UpstreamKey
    /// The client connection whose request this connection carries now; nil while idle. Cleared at the end
    /// of every response, on close and on failure, so it never outlives the exchange.
    var delegate: (any UpstreamDelegate)?
    /// False once the connection closed or failed; it is then never reused.
    private(set) var isUsable = true
    private var context: ChannelHandlerContext?
    private var state = State.idle
    private var inbound: ByteBuffer?
    private var fields: [HeadField] = []
    private var requestWasHEAD = false
    private var requestIsUpgrade = false
    private var dechunk = false
    private var responseKeepAlive = true
    private var scanner = ChunkedBodyScanner()
    private var reading = true
    private var headScan = 0

    init(key: UpstreamKey) {
        self.key = key
        fields.reserveCapacity(16)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Starts an exchange: the response to the request about to be sent is read next. A chunked response is
    /// passed on without its framing when `dechunk` (for an HTTP/1.0 client).
    func begin(requestIsHEAD: Bool, dechunk: Bool, upgrade: Bool = false) {
        requestWasHEAD = requestIsHEAD
        requestIsUpgrade = upgrade
        self.dechunk = dechunk
        state = .head
        headScan = 0
    }

    /// Writes request bytes; nothing reaches the socket before `flush()`.
    func send(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    func flush() { context?.flush() }

    func sendAndFlush(_ buffer: ByteBuffer) {
        context?.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Pauses or resumes reading the response (while the client cannot take more).
    func setReading(_ enabled: Bool) {
        guard enabled != reading, let channel = context?.channel else { return }
        reading = enabled
        try? channel.syncOptions?.setOption(.autoRead, value: enabled)
    }

    /// Ends the sending side only (a tunnelled client shut its own): the upstream may still answer.
    func closeOutput() {
        context?.close(mode: .output, promise: nil)
    }

    func close() {
        isUsable = false
        delegate = nil
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if case .idle = state {
            close()
            return
        }
        // What was passed on is not kept: bytes left over (part of a head or a size line) are few.
        if inbound != nil && inbound!.readableBytes > 0 {
            inbound!.writeBuffer(&buffer)
        } else {
            inbound = buffer
        }
        process()
        if let left = inbound, left.readableBytes == 0 { inbound = nil }
    }

    private func process() {
        while var buffer = inbound, buffer.readableBytes > 0 {
            switch state {
            case .idle:
                close()
                return
            case .head:
                let outcome = buffer.withUnsafeReadableBytes { HeadParser.response($0, fields: &fields, resume: &headScan) }
                switch outcome {
                case .incomplete:
                    return
                case .failed(let error):
                    fail(UpstreamProtocolError(description: error.reason))
                    context?.close(promise: nil)
                    return
                case .complete(let head):
                    if head.status < 200 {
                        if head.status == 101 && requestIsUpgrade {
                            buffer.withUnsafeReadableBytes { bytes in
                                delegate?.upstreamSwitchedProtocols(head, bytes: bytes, fields: fields)
                            }
                            guard case .head = state, isUsable else { return }
                            buffer.moveReaderIndex(forwardBy: head.length)
                            inbound = buffer
                            state = .tunnel
                            continue
                        }
                        guard head.status != 101 else {
                            fail(UpstreamProtocolError(description: "the upstream switched protocols unasked"))
                            context?.close(promise: nil)
                            return
                        }
                        buffer.moveReaderIndex(forwardBy: head.length)
                        inbound = buffer
                        headScan = 0
                        continue
                    }
                    let framing = head.framing(requestWasHEAD: requestWasHEAD)
                    responseKeepAlive = head.keepAlive && framing != .untilClose
                    buffer.withUnsafeReadableBytes { bytes in
                        delegate?.upstreamResponseHead(head, bytes: bytes, fields: fields, framing: framing)
                    }
                    // The client may have gone meanwhile, failing this exchange.
                    guard case .head = state, isUsable else { return }
                    buffer.moveReaderIndex(forwardBy: head.length)
                    inbound = buffer
                    switch framing {
                    case .none: finishResponse()
                    case .length(let length): state = .length(length)
                    case .chunked:
                        scanner = ChunkedBodyScanner()
                        state = .chunked
                    case .untilClose: state = .untilClose
                    }
                }
            case .length(let remaining):
                let count = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: count)!
                inbound = buffer
                delegate?.upstreamResponseBody(slice)
                if count == remaining {
                    finishResponse()
                } else {
                    state = .length(remaining - count)
                }
            case .chunked:
                let consumed: Int
                do {
                    if dechunk {
                        var pieces: [Range<Int>] = []
                        consumed = try buffer.withUnsafeReadableBytes { bytes in
                            try scanner.scan(bytes) { pieces.append($0) }
                        }
                        for piece in pieces where !piece.isEmpty {
                            delegate?.upstreamResponseBody(buffer.getSlice(at: buffer.readerIndex + piece.lowerBound, length: piece.count)!)
                        }
                        buffer.moveReaderIndex(forwardBy: consumed)
                    } else {
                        consumed = try buffer.withUnsafeReadableBytes { bytes in try scanner.scan(bytes) }
                        delegate?.upstreamResponseBody(buffer.readSlice(length: consumed)!)
                    }
                } catch {
                    let reason = (error as? HeadError)?.reason ?? "\(error)"
                    fail(UpstreamProtocolError(description: reason + " from the upstream"))
                    context?.close(promise: nil)
                    return
                }
                inbound = buffer
                if scanner.isDone { finishResponse() }
            case .untilClose, .tunnel:
                inbound = nil
                delegate?.upstreamResponseBody(buffer)
            }
        }
    }

    private func finishResponse() {
        state = .idle
        let extra = inbound?.readableBytes ?? 0
        inbound = nil
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamResponseEnd(reusable: responseKeepAlive && isUsable && extra == 0)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(writable: context.channel.isWritable)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isUsable = false
        switch state {
        case .untilClose, .tunnel:
            finishResponse()
            return
        default:
            break
        }
        fail(UpstreamClosedError())
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    private func fail(_ error: any Error) {
        isUsable = false
        state = .idle
        inbound = nil
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
    /// The timeouts of the client connections of this loop.
    let sweeper: ConnectionSweeper

    /// Idle connections kept per color and loop. Set above the concurrency a loop sees: below it, every burst of
    /// responses closes connections the next burst of requests opens again (measured with 1000 clients and a
    /// cap of 256: four requests in ten opened a connection). A color closes the idle ones it does not want.
    init(eventLoop: any EventLoop, timeouts: RouterTimeouts, maxIdlePerKey: Int = 4096) {
        self.eventLoop = eventLoop
        self.maxIdlePerKey = maxIdlePerKey
        sweeper = ConnectionSweeper(eventLoop: eventLoop, timeouts: timeouts)
    }

    /// An idle, still open connection to `key`, if there is one.
    func take(_ key: UpstreamKey) -> UpstreamConnection? {
        guard let list = list(for: key) else { return nil }
        while let connection = list.connections.popLast() {
            if connection.isUsable { return connection }
        }
        return nil
    }

    /// Keeps a connection whose exchange finished cleanly for the next request.
    func put(_ connection: UpstreamConnection) {
        guard connection.isUsable else { return }
        // Reading may have been paused for a slow client; an idle connection must notice when the color closes it.
        connection.setReading(true)
        let list: IdleList
        if let existing = self.list(for: connection.key) {
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

    /// The idle list of the key used last is kept at hand: most requests of a loop go to one color, and
    /// comparing two keys is cheaper than hashing one.
    private var recent: (key: UpstreamKey, list: IdleList)?

    private func list(for key: UpstreamKey) -> IdleList? {
        if let recent, recent.key == key { return recent.list }
        guard let list = idle[key] else { return nil }
        recent = (key, list)
        return list
    }

    /// Opens a new connection on this pool's event loop; the channel's last handler is its `UpstreamConnection`.
    func connect(_ key: UpstreamKey) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(3))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
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
        recent = nil
    }
}

/// One `UpstreamPool` per event loop of the router's group, created on first use on that loop.
final class UpstreamPools: Sendable {
    private let pools: [ObjectIdentifier: NIOLoopBoundBox<UpstreamPool?>]
    private let timeouts: RouterTimeouts

    init(group: MultiThreadedEventLoopGroup, timeouts: RouterTimeouts) {
        self.timeouts = timeouts
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
        let pool = UpstreamPool(eventLoop: eventLoop, timeouts: timeouts)
        box.value = pool
        return pool
    }
}
