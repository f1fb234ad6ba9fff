import NIOCore

/// Serves one client connection of one app: each request goes to the upstream the route table picks when
/// its head arrives, so a route switch moves keep-alive clients at their next request.
///
/// Bytes, not parsed messages: the request head is parsed in place and written again for the upstream
/// with only the lines it keeps (hop-by-hop fields out, `X-Forwarded-For` in); request and response
/// bodies pass through as the buffers that arrived, read only as far as needed to find where they end;
/// the response head is rewritten the same way as the request's.
///
/// Writes are batched: request bytes go to the upstream unflushed and are flushed once when the client's
/// read burst ends; response bytes are flushed when the upstream's read burst ends. A pipelined request
/// waits in the read buffer until the one before it is answered, and reading from the client pauses (by
/// holding back `read()`) only while such a request waits, the upstream cannot take more, or a body
/// arrives before its upstream connection is ready.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// One request on its way through the proxy.
    private final class Exchange {
        enum Kind {
            case forward(ProxyTarget)
            /// The router answers itself once the request has been read.
            case answer(status: Int, message: String)
        }

        var kind: Kind
        /// The head for the upstream, kept until the response starts so a retry can send it again. Without its
        /// framing and final empty line while a chunked body is collected.
        var upstreamHead: ByteBuffer?
        let isHEAD: Bool
        let isUpgrade: Bool
        let clientMinorVersion: Int
        let clientKeepAlive: Bool
        let hasBody: Bool
        let isIdempotent: Bool
        var connection: UpstreamConnection?
        var reusedConnection = false
        /// Body bytes received before an upstream connection was ready.
        var pending: [ByteBuffer] = []
        /// A chunked body is being collected: nothing goes to the color before it is complete and checked, or
        /// grows past the limit (then it streams). `pending` holds it as it came, `dechunked` without its framing.
        var collecting = false
        var dechunked: ByteBuffer?
        var collectedBytes = 0
        /// The upstream connection is not reused after this exchange (it was told `Connection: close`).
        var closeUpstream = false
        /// Bytes written to the upstream connection and not flushed yet.
        var unflushed = false
        var requestEnded: Bool
        var responseStarted = false
        var closeAfterResponse = false
        var attempts = 0
        /// Its counters are settled.
        var finished = false
        /// The sweep tick when the request ended: the answer is due from then.
        var waitingSince: Int

        init(kind: Kind, upstreamHead: ByteBuffer?, head: RequestHead, tick: Int) {
            self.kind = kind
            waitingSince = tick
            self.upstreamHead = upstreamHead
            isHEAD = head.isHEAD
            isUpgrade = head.isUpgrade
            clientMinorVersion = head.minorVersion
            clientKeepAlive = head.keepAlive
            hasBody = head.body != .none
            isIdempotent = head.isIdempotent
            requestEnded = !hasBody
        }

        var target: ProxyTarget? {
            if case .forward(let target) = kind { return target }
            return nil
        }
    }

    /// Where the reader of the client's bytes is.
    private enum RequestBody: Equatable {
        /// Between requests: the next bytes are a head.
        case none
        case length(Int)
        case chunked
    }

    private static let maxAttempts = 3

    private let app: String
    private let slot: RouteSlot
    private let pool: UpstreamPool
    private let sweeper: ConnectionSweeper
    /// Sweep ticks of the last client read or finished response, and of the first byte of an unfinished head.
    private var lastActivity = 0
    private var headStarted: Int?
    /// Where the search for the end of an unfinished head goes on.
    private var headScan = 0
    private var context: ChannelHandlerContext?
    /// The client channel's allocator, kept: asking the channel for it costs a reference count each time.
    private var allocator = ByteBufferAllocator()
    /// The client's address as the forwarding fields give it.
    private var client: ForwardedClient?
    /// The client may have set the forwarding fields itself (a proxy in front): checked once per connection.
    private var clientTrusted = false
    /// Client bytes not handled yet: a partial head, or a pipelined request waiting for its turn.
    private var inbound: ByteBuffer?
    private var fields: [HeadField] = []
    private var body = RequestBody.none
    private var scanner = ChunkedBodyScanner()
    private var exchange: Exchange?
    /// True while a client read burst (or the replay of a waiting request) runs: upstream flushes wait for its end.
    private var batching = false
    private var processing = false
    /// A `read()` was held back.
    private var readPending = false
    private var upstreamBlocked = false
    /// The client channel's writability, as its last change said.
    private var clientWritable = true
    /// The client shut its sending side; the connection closes once nothing is left to answer.
    private var inputClosed = false
    /// The last response is being written; nothing more is read or answered.
    private var closing = false
    /// The response head, and the small body bytes that came with it, not written yet: they go out as
    /// one buffer at the end of the upstream's read burst.
    private var responseOut: ByteBuffer?
    private static let coalescedBodyBytes = 4096
    /// The buffers of the last request head sent to a color and of the last response head written to the client,
    /// used again for the next ones: once NIO has written them nothing else holds them, and `clear` keeps their
    /// storage, so a request on a kept-alive connection allocates neither. Kept only while small.
    private var spareUpstreamHead: ByteBuffer?
    private var spareResponse: ByteBuffer?
    private static let spareBufferBytes = 16 * 1024
    /// The color answered `101`: from now on bytes pass both ways untouched until either side closes.
    private var tunnel = false
    private let maxCollectedChunkedBody: Int
    /// `https` behind TLS: what `X-Forwarded-Proto` and `Forwarded` say.
    private let scheme: StaticString
    /// The listener that accepted this connection.
    let listener: ListenerTag?
    /// That listener was replaced (its TLS setting changed): no response after the current one.
    private var retired = false

    /// Call on the event loop of the client channel: `pool` is that loop's pool.
    init(app: String, slot: RouteSlot, pool: UpstreamPool, limits: RouterLimits = RouterLimits(), scheme: StaticString = "http",
         listener: ListenerTag? = nil) {
        self.scheme = scheme
        self.listener = listener
        self.app = app
        self.slot = slot
        self.pool = pool
        maxCollectedChunkedBody = limits.maxCollectedChunkedBody
        sweeper = pool.sweeper
        fields.reserveCapacity(16)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let clientAddress = context.channel.remoteAddress?.ipAddress
        client = clientAddress.map(ForwardedClient.init)
        allocator = context.channel.allocator
        clientTrusted = slot.trusts(clientAddress)
        lastActivity = sweeper.tick
        sweeper.register(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        sweeper.unregister(self)
    }

    // MARK: Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        lastActivity = sweeper.tick
        var buffer = unwrapInboundIn(data)
        if inbound != nil {
            inbound!.writeBuffer(&buffer)
        } else {
            inbound = buffer
        }
        batching = true
        process()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        batching = false
        flushUpstream()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if canRead {
            context.read()
        } else {
            readPending = true
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, !closing {
            inputClosed = true
            if tunnel {
                // Passed on as it came: the color may still have bytes to send back.
                exchange?.connection?.closeOutput()
            } else if body != .none || (exchange == nil && inbound != nil) {
                // In the middle of a request that can never be complete now: release its color connection at once.
                abort(context: context)
            } else if exchange == nil {
                closeAfter(nil, context: context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        clientWritable = context.channel.isWritable
        exchange?.connection?.setReading(clientWritable)
        resumeReading()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if tunnel { slot.removeTunnel(id: ObjectIdentifier(self)) }
        if let exchange {
            exchange.connection?.close()
            exchange.connection = nil
            finish(exchange, failed: !exchange.responseStarted)
        }
        exchange = nil
        inbound = nil
        responseOut = nil
        closing = true
        sweeper.unregister(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Not while a request waits for the one before it, the upstream or the client is full, or body bytes
    /// have nowhere to go yet.
    private var canRead: Bool {
        if upstreamBlocked || !clientWritable { return false }
        guard let exchange else { return true }
        if body == .none { return inbound == nil }
        return exchange.connection != nil || exchange.target == nil || exchange.collecting
    }

    private func resumeReading() {
        guard readPending, canRead, let context else { return }
        readPending = false
        context.read()
    }

    /// Handles the client's bytes as far as they go: heads start exchanges, body bytes follow them.
    private func process() {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while !closing, let context, var buffer = inbound, buffer.readableBytes > 0 {
            switch body {
            case .none:
                if tunnel {
                    inbound = nil
                    deliver(buffer)
                    continue
                }
                if exchange != nil { return }
                let outcome = buffer.withUnsafeReadableBytes { HeadParser.request($0, fields: &fields, resume: &headScan) }
                switch outcome {
                case .incomplete:
                    if headStarted == nil { headStarted = sweeper.tick }
                    return
                case .failed(let error):
                    reject(error, context: context)
                    return
                case .complete(let head):
                    headStarted = nil
                    headScan = 0
                    let headBytes = buffer.readSlice(length: head.length)!
                    inbound = buffer.readableBytes > 0 ? buffer : nil
                    headBytes.withUnsafeReadableBytes { begin(head, bytes: $0, context: context) }
                    switch head.body {
                    case .none, .untilClose: requestEnded()
                    case .length(let length): body = .length(length)
                    case .chunked:
                        scanner = ChunkedBodyScanner()
                        body = .chunked
                    }
                }
            case .length(let remaining):
                let count = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: count)!
                inbound = buffer.readableBytes > 0 ? buffer : nil
                deliver(slice)
                if count == remaining {
                    body = .none
                    requestEnded()
                } else {
                    body = .length(remaining - count)
                }
            case .chunked:
                let consumed: Int
                do {
                    if let exchange, exchange.collecting {
                        consumed = try buffer.withUnsafeReadableBytes { bytes in
                            try scanner.scan(bytes) { range in exchange.dechunked!.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[range])) }
                        }
                    } else {
                        consumed = try buffer.withUnsafeReadableBytes { bytes in try scanner.scan(bytes) }
                    }
                } catch {
                    reject((error as? HeadError) ?? HeadError(status: 400, reason: "malformed chunked body"), context: context)
                    return
                }
                let slice = buffer.readSlice(length: consumed)!
                inbound = buffer.readableBytes > 0 ? buffer : nil
                deliver(slice)
                if scanner.isDone {
                    body = .none
                    requestEnded()
                }
            }
        }
        if inputClosed && exchange == nil && !closing, let context { closeAfter(nil, context: context) }
    }

    private func begin(_ head: RequestHead, bytes: UnsafeRawBufferPointer, context: ChannelHandlerContext) {
        if head.expectsContinue {
            context.writeAndFlush(wrapOutboundOut(allocator.buffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")),
                                  promise: nil)
        }
        guard let target = slot.select() else {
            exchange = Exchange(kind: .answer(status: 503, message: "no healthy color is routed for \(app)\n"),
                                upstreamHead: nil, head: head, tick: sweeper.tick)
            return
        }
        target.stats.requests.add(1, ordering: .relaxed)
        target.stats.inFlight.add(1, ordering: .relaxed)
        let host = head.hasHost ? "" : "\(target.key.host):\(target.key.port)"
        var upstreamHead = reuse(&spareUpstreamHead, capacity: HeadWriter.upstreamRequestRoom(head, client: client, host: host))
        let chunked = head.body == .chunked
        HeadWriter.upstreamRequest(head, bytes: bytes, fields: fields, client: client, host: host,
                                   leaveOpen: chunked, upgrade: head.isUpgrade, trusted: clientTrusted, scheme: scheme,
                                   into: &upstreamHead)
        let exchange = Exchange(kind: .forward(target), upstreamHead: upstreamHead, head: head, tick: sweeper.tick)
        self.exchange = exchange
        if chunked {
            // The color sees nothing of this request before its body is known to be well formed (or too long to wait for).
            exchange.collecting = true
            exchange.dechunked = allocator.buffer(capacity: 0)
            return
        }
        acquireConnection(for: exchange, context: context)
    }

    /// A collected chunked body grew past the limit: the head goes out with its chunked framing, the body so far
    /// as it came, and the rest streams. `Connection: close` keeps an app that frames by `Content-Length` only
    /// from reading the body as a next request.
    private func streamChunkedBody(of exchange: Exchange) {
        guard let context else { return }
        exchange.collecting = false
        exchange.dechunked = nil
        exchange.closeUpstream = true
        exchange.upstreamHead?.writeStaticString("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        acquireConnection(for: exchange, context: context)
    }

    /// A collected chunked body is complete and well formed: it goes to the color de-chunked, with `Content-Length`
    /// (its trailer fields are dropped, as nginx does when it buffers a body).
    private func sendCollectedBody(of exchange: Exchange) {
        guard let context, let dechunked = exchange.dechunked else { return }
        exchange.collecting = false
        exchange.dechunked = nil
        exchange.upstreamHead?.writeString("Content-Length: \(dechunked.readableBytes)\r\n\r\n")
        exchange.pending = dechunked.readableBytes > 0 ? [dechunked] : []
        acquireConnection(for: exchange, context: context)
    }

    /// Body bytes of the current request: to the upstream, kept until its connection is ready, or dropped
    /// when nothing takes them any more (the router answers itself, or the response already ended).
    private func deliver(_ slice: ByteBuffer) {
        guard let exchange, exchange.target != nil, !exchange.finished else { return }
        if exchange.collecting {
            exchange.pending.append(slice)
            exchange.collectedBytes += slice.readableBytes
            if exchange.collectedBytes > maxCollectedChunkedBody && !scanner.isDone { streamChunkedBody(of: exchange) }
            return
        }
        guard let connection = exchange.connection else {
            exchange.pending.append(slice)
            return
        }
        connection.send(slice)
        exchange.unflushed = true
        if !batching { flushUpstream() }
    }

    private func requestEnded() {
        guard let exchange else { return }
        exchange.requestEnded = true
        exchange.waitingSince = sweeper.tick
        if exchange.collecting {
            sendCollectedBody(of: exchange)
            return
        }
        if case .answer(let status, let message) = exchange.kind {
            self.exchange = nil
            respond(status, message, to: exchange)
        }
    }

    private func acquireConnection(for exchange: Exchange, context: ChannelHandlerContext) {
        guard let target = exchange.target else { return }
        exchange.attempts += 1
        if let connection = pool.take(target.key) {
            attach(connection, to: exchange, reused: true)
            return
        }
        pool.connect(target.key).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard self.exchange === exchange, !exchange.finished,
                      let connection = try? channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
                else {
                    channel.close(promise: nil)
                    return
                }
                attach(connection, to: exchange, reused: false)
            case .failure:
                guard self.exchange === exchange, !exchange.finished else { return }
                answerFailure(of: exchange, status: 502, message: "color \(exchange.target?.color ?? "?") of \(app) is unreachable\n")
            }
        }
    }

    private func attach(_ connection: UpstreamConnection, to exchange: Exchange, reused: Bool) {
        exchange.connection = connection
        exchange.reusedConnection = reused
        connection.delegate = self
        connection.begin(requestIsHEAD: exchange.isHEAD, dechunk: exchange.clientMinorVersion == 0, upgrade: exchange.isUpgrade)
        if !clientWritable { connection.setReading(false) }
        if exchange.requestEnded && exchange.pending.isEmpty && inbound == nil, let head = exchange.upstreamHead {
            // The whole request is this head and nothing else is waiting: one write with its flush.
            connection.sendAndFlush(head)
            exchange.unflushed = false
            resumeReading()
            return
        }
        if let head = exchange.upstreamHead { connection.send(head) }
        for slice in exchange.pending { connection.send(slice) }
        exchange.pending.removeAll()
        exchange.unflushed = true
        if !batching { flushUpstream() }
        resumeReading()
    }

    private func flushUpstream() {
        guard let exchange, exchange.unflushed, let connection = exchange.connection else { return }
        exchange.unflushed = false
        connection.flush()
    }

    // MARK: Upstream side

    func upstreamResponseHead(_ head: ResponseHead, bytes: UnsafeRawBufferPointer, fields: [HeadField], framing: BodyFraming) {
        guard let context, let exchange else { return }
        exchange.responseStarted = true
        lastActivity = sweeper.tick
        let http10 = exchange.clientMinorVersion == 0
        // Bodies without length end with the connection; an HTTP/1.0 client gets a chunked body de-chunked.
        // (A client that shut its sending side still gets the answers to requests it sent before.)
        let keepAlive = exchange.clientKeepAlive && !retired && framing != .untilClose && !(http10 && framing == .chunked)
        exchange.closeAfterResponse = !keepAlive
        var capacity = head.length + 32
        if case .length(let length) = framing, length <= Self.coalescedBodyBytes { capacity += length }
        var out = reuse(&spareResponse, capacity: capacity)
        HeadWriter.clientResponse(head, bytes: bytes, fields: fields, clientMinorVersion: exchange.clientMinorVersion,
                                  keepAlive: keepAlive,
                                  passesTransferCoding: !http10 && (framing == .chunked || framing == .untilClose), into: &out)
        responseOut = out
    }

    func upstreamSwitchedProtocols(_ head: ResponseHead, bytes: UnsafeRawBufferPointer, fields: [HeadField]) {
        guard let context, let exchange, let target = exchange.target else { return }
        exchange.responseStarted = true
        exchange.closeAfterResponse = true
        lastActivity = sweeper.tick
        tunnel = true
        slot.addTunnel(id: ObjectIdentifier(self), color: target.color, key: target.key, channel: context.channel)
        var out = allocator.buffer(capacity: head.length + 32)
        HeadWriter.clientResponse(head, bytes: bytes, fields: fields, clientMinorVersion: 1, keepAlive: false,
                                  passesTransferCoding: false, upgraded: true, into: &out)
        responseOut = out
        // Bytes the client sent after its request head already belong to the new protocol.
        if body == .none, inbound != nil {
            let wasBatching = batching
            batching = true
            process()
            batching = wasBatching
            if !batching { flushUpstream() }
        }
    }

    func upstreamResponseBody(_ buffer: ByteBuffer) {
        lastActivity = sweeper.tick
        if responseOut != nil && buffer.readableBytes <= Self.coalescedBodyBytes {
            var buffer = buffer
            responseOut!.writeBuffer(&buffer)
            return
        }
        writeResponseOut()
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    func upstreamReadComplete() {
        writeResponseOut()
        context?.flush()
    }

    private func writeResponseOut() {
        guard let out = responseOut else { return }
        responseOut = nil
        keepSpare(out, in: &spareResponse)
        context?.write(wrapOutboundOut(out), promise: nil)
    }

    /// `spare` emptied for a new head, or a new buffer when there is none.
    private func reuse(_ spare: inout ByteBuffer?, capacity: Int) -> ByteBuffer {
        guard var buffer = spare else { return allocator.buffer(capacity: capacity) }
        spare = nil
        // Allocates only when NIO still holds the bytes (a write not finished yet).
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    private func keepSpare(_ buffer: ByteBuffer, in spare: inout ByteBuffer?) {
        if buffer.capacity <= Self.spareBufferBytes { spare = buffer }
    }

    func upstreamResponseEnd(reusable: Bool) {
        guard let context, let exchange else { return }
        if let connection = exchange.connection {
            if reusable && exchange.requestEnded && !exchange.closeUpstream {
                pool.put(connection)
            } else {
                connection.close()
            }
            exchange.connection = nil
        }
        finish(exchange, failed: false)
        self.exchange = nil
        if let head = exchange.upstreamHead {
            exchange.upstreamHead = nil
            keepSpare(head, in: &spareUpstreamHead)
        }
        lastActivity = sweeper.tick
        if exchange.closeAfterResponse || (inputClosed && inbound == nil) {
            writeResponseOut()
            closeAfter(nil, context: context)
            return
        }
        if let out = responseOut {
            responseOut = nil
            keepSpare(out, in: &spareResponse)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        } else {
            context.flush()
        }
        let wasBatching = batching
        batching = true
        process()
        batching = wasBatching
        if !batching { flushUpstream() }
        resumeReading()
    }

    func upstreamFailed(_ error: any Error) {
        guard let context, let exchange, !exchange.finished else { return }
        exchange.connection = nil
        if exchange.responseStarted {
            abort(context: context)
            return
        }
        // A kept-alive connection the color closed just as the request went out: sent again on a new one, but
        // only a request that is safe to repeat (the color may have run it before the connection broke).
        if exchange.reusedConnection && !exchange.hasBody && exchange.isIdempotent && exchange.attempts < Self.maxAttempts {
            acquireConnection(for: exchange, context: context)
            return
        }
        answerFailure(of: exchange, status: 502, message: "color \(exchange.target?.color ?? "?") of \(app) is unreachable\n")
    }

    func upstreamWritabilityChanged(writable: Bool) {
        upstreamBlocked = !writable
        resumeReading()
    }

    // MARK: Answers of the router itself

    private func answerFailure(of exchange: Exchange, status: Int, message: String) {
        finish(exchange, failed: true)
        exchange.pending.removeAll()
        exchange.kind = .answer(status: status, message: message)
        if exchange.requestEnded {
            self.exchange = nil
            respond(status, message, to: exchange)
            process()
        }
        resumeReading()
    }

    /// The listener of this connection was replaced: the response in progress (if any) is the last, said with
    /// `Connection: close`, or said too late and the connection closed after it; an idle connection or one
    /// in the middle of a head closes now (once what was written has gone). An upgraded connection stays a tunnel.
    func listenerRetired() {
        guard !closing, !tunnel, let context else { return }
        retired = true
        if let exchange {
            exchange.closeAfterResponse = true
        } else {
            closeAfter(nil, context: context)
        }
    }

    // MARK: Timeouts

    /// Called by the loop's sweeper: a color that does not answer gets 504, a client that does not finish
    /// its head gets 408, an exchange where nothing moved for the upstream timeout (a body that stopped
    /// coming from either side, a client that stopped reading) is cut, an idle keep-alive connection is closed.
    func checkDeadlines(tick: Int) {
        guard let context else { return }
        let ticks = sweeper.ticks
        if closing {
            // The last bytes never left (the client does not read): close without them.
            if tick - lastActivity >= ticks.idleClient { context.close(promise: nil) }
            return
        }
        if let exchange {
            // A tunnel has no timeout of its own: it lasts until either side closes or its color leaves the route.
            if tunnel { return }
            if let target = exchange.target, exchange.requestEnded, !exchange.responseStarted {
                guard tick - exchange.waitingSince >= ticks.upstreamResponse else { return }
                exchange.connection?.close()
                exchange.connection = nil
                answerFailure(of: exchange, status: 504, message: "color \(target.color) of \(app) did not answer within "
                    + "\(Self.seconds(sweeper.timeouts.upstreamResponse)) seconds\n")
            } else if tick - lastActivity >= ticks.upstreamResponse {
                abort(context: context)
            }
            return
        }
        if let headStarted, inbound != nil, body == .none {
            if tick - headStarted >= ticks.requestHead {
                reject(HeadError(status: 408, reason: "request head not received within "
                    + "\(Self.seconds(sweeper.timeouts.requestHead)) seconds"), context: context)
            }
            return
        }
        if tick - lastActivity >= ticks.idleClient {
            closing = true
            context.close(promise: nil)
        }
    }

    private static func seconds(_ amount: TimeAmount) -> String {
        let value = Double(amount.nanoseconds) / 1e9
        return value == value.rounded() ? String(Int(value)) : String(value)
    }

    private func finish(_ exchange: Exchange, failed: Bool) {
        guard !exchange.finished else { return }
        exchange.finished = true
        upstreamBlocked = false
        guard let target = exchange.target else { return }
        target.stats.inFlight.subtract(1, ordering: .relaxed)
        if failed { target.stats.failures.add(1, ordering: .relaxed) }
    }

    /// Ends the current exchange as failed and closes its upstream connection. Returns whether part of its
    /// response already went to the client.
    private func dropExchange() -> Bool {
        guard let exchange else { return false }
        exchange.connection?.close()
        exchange.connection = nil
        finish(exchange, failed: true)
        self.exchange = nil
        return exchange.responseStarted
    }

    /// Closes the client connection at once with nothing more to write: a response broke midway, or
    /// nothing moved for too long.
    private func abort(context: ChannelHandlerContext) {
        _ = dropExchange()
        closing = true
        inbound = nil
        responseOut = nil
        context.close(promise: nil)
    }

    /// A request the router cannot read: answered (when nothing of a response went out yet) and the
    /// connection closed, since where the next request would start is unknown.
    private func reject(_ error: HeadError, context: ChannelHandlerContext) {
        guard !dropExchange() else {
            closeAfter(nil, context: context)
            return
        }
        var out = allocator.buffer(capacity: 256)
        HeadWriter.answer(status: error.status, message: error.reason + "\n", minorVersion: 1, keepAlive: false,
                          includeBody: true, into: &out)
        closeAfter(out, context: context)
    }

    private func respond(_ status: Int, _ message: String, to exchange: Exchange) {
        guard let context else { return }
        let keepAlive = exchange.clientKeepAlive && !retired
        var out = allocator.buffer(capacity: 256)
        HeadWriter.answer(status: status, message: message, minorVersion: exchange.clientMinorVersion, keepAlive: keepAlive,
                          includeBody: !exchange.isHEAD, into: &out)
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        } else {
            closeAfter(out, context: context)
        }
    }

    /// Writes the last bytes (if any), then closes the connection.
    private func closeAfter(_ last: ByteBuffer?, context: ChannelHandlerContext) {
        closing = true
        lastActivity = sweeper.tick
        inbound = nil
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(last ?? allocator.buffer(capacity: 0)), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
