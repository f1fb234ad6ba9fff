import NIOCore
import NIOHTTP1

/// Serves one client connection of one app: each request goes to the upstream the route table
/// picks when its head arrives, so a route switch moves keep-alive clients at their next request.
///
/// Writes are batched: request parts go to the upstream unflushed and are flushed once when the
/// client's read burst ends; a response is flushed once, at its end (or when an upstream read burst
/// of a streamed body ends). Pipelined requests wait in a queue while one is in flight, and reading
/// from the client pauses (by holding back `read()`) only while that queue is not empty or the
/// upstream cannot take more.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// One request on its way through the proxy.
    private final class Exchange {
        let clientHead: HTTPRequestHead
        let upstreamHead: HTTPRequestHead
        let target: ProxyTarget
        var connection: UpstreamConnection?
        var reusedConnection = false
        /// Request parts received before an upstream connection was ready.
        var pending: [HTTPClientRequestPart] = []
        /// Parts written to the upstream connection and not flushed yet.
        var unflushed = false
        var hadBody = false
        var requestEnded = false
        var responseStarted = false
        var closeAfterResponse = false
        var attempts = 0
        var finished = false

        init(clientHead: HTTPRequestHead, upstreamHead: HTTPRequestHead, target: ProxyTarget) {
            self.clientHead = clientHead
            self.upstreamHead = upstreamHead
            self.target = target
        }
    }

    private enum Phase {
        case idle
        /// The router answers itself (503, 502) once the request has been read.
        case answering(status: HTTPResponseStatus, message: String, head: HTTPRequestHead)
        case forwarding(Exchange)
        /// The last response is being written; the connection closes after it.
        case closing
    }

    private static let maxAttempts = 3

    private let app: String
    private let slot: RouteSlot
    private let pool: UpstreamPool
    private var phase = Phase.idle
    private var context: ChannelHandlerContext?
    private var clientAddress: String?
    /// Parts of pipelined requests that arrived while an earlier request was in flight.
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    /// True while a client read burst (or the replay of queued parts) runs: upstream flushes wait for its end.
    private var batching = false
    private var draining = false
    /// A `read()` was held back because the queue is not empty or the upstream is not writable.
    private var readPending = false
    private var upstreamBlocked = false
    /// The client shut its sending side; the connection closes once nothing is left to answer.
    private var inputClosed = false

    /// Call on the event loop of the client channel: `pool` is that loop's pool.
    init(app: String, slot: RouteSlot, pool: UpstreamPool) {
        self.app = app
        self.slot = slot
        self.pool = pool
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientAddress = context.channel.remoteAddress?.ipAddress
    }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    // MARK: Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        batching = true
        let part = unwrapInboundIn(data)
        if !queued.isEmpty {
            queued.append(part)
            return
        }
        if case .head = part, !isIdle {
            queued.append(part)
            return
        }
        handle(part, context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        batching = false
        flushUpstream()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if queued.isEmpty && !upstreamBlocked {
            context.read()
        } else {
            readPending = true
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            if isIdle && queued.isEmpty { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .forwarding(let exchange) = phase { exchange.connection?.setReading(context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .forwarding(let exchange) = phase {
            exchange.connection?.close()
            exchange.connection = nil
            finish(exchange, failed: !exchange.responseStarted)
        }
        phase = .idle
        queued.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private var isIdle: Bool {
        if case .idle = phase { return true }
        return false
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            begin(head, context: context)
        case .body(let buffer):
            guard case .forwarding(let exchange) = phase, !exchange.finished else { return }
            exchange.hadBody = true
            forward(.body(.byteBuffer(buffer)), in: exchange)
        case .end:
            switch phase {
            case .idle, .closing:
                return
            case .answering(let status, let message, let head):
                phase = .idle
                respond(status, message, to: head, context: context)
            case .forwarding(let exchange):
                exchange.requestEnded = true
                if !exchange.finished { forward(.end(nil), in: exchange) }
            }
        }
    }

    /// Replays queued pipelined parts once the request before them is answered.
    private func drainQueue() {
        guard !draining, let context else { return }
        draining = true
        let wasBatching = batching
        batching = true
        while let part = queued.first {
            if case .head = part, !isIdle { break }
            queued.removeFirst()
            handle(part, context: context)
        }
        batching = wasBatching
        draining = false
        if !batching { flushUpstream() }
        resumeReading()
    }

    private func resumeReading() {
        guard readPending, queued.isEmpty, !upstreamBlocked, let context else { return }
        readPending = false
        context.read()
    }

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        var head = head
        if head.headers.contains(name: "expect"),
           head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            head.headers.remove(name: "expect")
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        guard let target = slot.select() else {
            phase = .answering(status: .serviceUnavailable, message: "no healthy color is routed for \(app)\n", head: head)
            return
        }
        target.stats.requests.add(1, ordering: .relaxed)
        target.stats.inFlight.add(1, ordering: .relaxed)
        let exchange = Exchange(clientHead: head, upstreamHead: upstreamHead(for: head), target: target)
        phase = .forwarding(exchange)
        acquireConnection(for: exchange, context: context)
    }

    private func upstreamHead(for head: HTTPRequestHead) -> HTTPRequestHead {
        let chunked = head.headers.contains(name: "transfer-encoding")
            && head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        var headers = HopByHop.stripped(head.headers)
        if chunked && !headers.contains(name: "content-length") { headers.add(name: "transfer-encoding", value: "chunked") }
        if let clientAddress {
            if headers.contains(name: "x-forwarded-for") {
                let previous = headers[canonicalForm: "x-forwarded-for"].joined(separator: ", ")
                headers.replaceOrAdd(name: "x-forwarded-for", value: previous.isEmpty ? clientAddress : "\(previous), \(clientAddress)")
            } else {
                headers.add(name: "x-forwarded-for", value: clientAddress)
            }
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
    }

    private func acquireConnection(for exchange: Exchange, context: ChannelHandlerContext) {
        let key = exchange.target.key
        exchange.attempts += 1
        if let connection = pool.take(key) {
            attach(connection, to: exchange, reused: true)
            return
        }
        pool.connect(key).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard case .forwarding(let current) = phase, current === exchange, !exchange.finished,
                      let connection = try? channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
                else {
                    channel.close(promise: nil)
                    return
                }
                attach(connection, to: exchange, reused: false)
            case .failure:
                guard case .forwarding(let current) = phase, current === exchange, !exchange.finished else { return }
                answerFailure(of: exchange)
            }
        }
    }

    private func attach(_ connection: UpstreamConnection, to exchange: Exchange, reused: Bool) {
        exchange.connection = connection
        exchange.reusedConnection = reused
        connection.delegate = self
        connection.send(.head(exchange.upstreamHead))
        if exchange.hadBody {
            for part in exchange.pending { connection.send(part) }
        } else if exchange.requestEnded {
            connection.send(.end(nil))
        }
        exchange.pending.removeAll()
        exchange.unflushed = true
        if !batching { flushUpstream() }
    }

    private func forward(_ part: HTTPClientRequestPart, in exchange: Exchange) {
        guard let connection = exchange.connection else {
            exchange.pending.append(part)
            return
        }
        connection.send(part)
        exchange.unflushed = true
        if !batching { flushUpstream() }
    }

    private func flushUpstream() {
        guard case .forwarding(let exchange) = phase, exchange.unflushed, let connection = exchange.connection else { return }
        exchange.unflushed = false
        connection.flush()
    }

    // MARK: Upstream side

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        guard let context, case .forwarding(let exchange) = phase else { return }
        exchange.responseStarted = true
        let clientHead = exchange.clientHead
        var headers = HopByHop.stripped(head.headers)
        var keepAlive = clientHead.isKeepAlive && !inputClosed
        if clientHead.version.minor == 0 && !headers.contains(name: "content-length")
            && head.status.mayHaveResponseBody && clientHead.method != .HEAD {
            keepAlive = false
        }
        if !keepAlive {
            headers.replaceOrAdd(name: "connection", value: "close")
        } else if clientHead.version.minor == 0 {
            headers.replaceOrAdd(name: "connection", value: "keep-alive")
        }
        exchange.closeAfterResponse = !keepAlive
        let response = HTTPResponseHead(version: clientHead.version, status: head.status, headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
    }

    func upstreamResponseBody(_ buffer: ByteBuffer) {
        guard let context, case .forwarding = phase else { return }
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamResponseEnd(reusable: Bool) {
        guard let context, case .forwarding(let exchange) = phase else { return }
        if let connection = exchange.connection {
            if reusable && exchange.requestEnded {
                pool.put(connection)
            } else {
                connection.close()
            }
            exchange.connection = nil
        }
        finish(exchange, failed: false)
        if exchange.closeAfterResponse || (inputClosed && queued.isEmpty) {
            closeAfter(.end(nil), context: context)
            return
        }
        phase = .idle
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        drainQueue()
    }

    func upstreamFailed(_ error: any Error) {
        guard let context, case .forwarding(let exchange) = phase, !exchange.finished else { return }
        exchange.connection = nil
        if exchange.responseStarted {
            finish(exchange, failed: true)
            phase = .closing
            queued.removeAll()
            context.close(promise: nil)
            return
        }
        if exchange.reusedConnection && !exchange.hadBody && exchange.attempts < Self.maxAttempts {
            acquireConnection(for: exchange, context: context)
            return
        }
        answerFailure(of: exchange)
    }

    func upstreamWritabilityChanged(writable: Bool) {
        upstreamBlocked = !writable
        resumeReading()
    }

    // MARK: Answers of the router itself

    private func answerFailure(of exchange: Exchange) {
        finish(exchange, failed: true)
        let message = "color \(exchange.target.color) of \(app) is unreachable\n"
        if exchange.requestEnded {
            phase = .idle
            if let context { respond(.badGateway, message, to: exchange.clientHead, context: context) }
            drainQueue()
        } else {
            phase = .answering(status: .badGateway, message: message, head: exchange.clientHead)
        }
    }

    private func finish(_ exchange: Exchange, failed: Bool) {
        guard !exchange.finished else { return }
        exchange.finished = true
        upstreamBlocked = false
        exchange.target.stats.inFlight.subtract(1, ordering: .relaxed)
        if failed { exchange.target.stats.failures.add(1, ordering: .relaxed) }
    }

    /// Writes the last part of the last response, then closes the connection.
    private func closeAfter(_ part: HTTPServerResponsePart, context: ChannelHandlerContext) {
        phase = .closing
        queued.removeAll()
        context.writeAndFlush(wrapOutboundOut(part)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func respond(_ status: HTTPResponseStatus, _ message: String, to head: HTTPRequestHead,
                         context: ChannelHandlerContext) {
        let keepAlive = head.isKeepAlive && !inputClosed
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(message.utf8.count))
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: message)))), promise: nil)
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            closeAfter(.end(nil), context: context)
        }
    }
}

/// Headers that describe one connection and are never forwarded (RFC 9110 §7.6.1).
enum HopByHop {
    static let names: [String] = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// `headers` without hop-by-hop fields and without the fields its `Connection` header names.
    /// Most requests carry none of them and are returned as they are; a response usually carries only
    /// `Connection` itself, removed in place.
    static func stripped(_ headers: HTTPHeaders) -> HTTPHeaders {
        var doomed: [String] = []
        for (name, value) in headers where isHopByHop(name) {
            doomed.append(name)
            guard equalsIgnoringCase(name, "connection") else { continue }
            for token in value.split(separator: ",") {
                let field = token.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()
                let name = String(field)
                if !name.isEmpty && !equalsIgnoringCase(name, "close") && !equalsIgnoringCase(name, "keep-alive") {
                    doomed.append(name)
                }
            }
        }
        guard !doomed.isEmpty else { return headers }
        var result = headers
        for name in doomed { result.remove(name: name) }
        return result
    }

    static func isHopByHop(_ name: String) -> Bool {
        switch name.utf8.count {
        case 2, 7, 10, 16, 17, 18, 19:
            return names.contains { equalsIgnoringCase($0, name) }
        default:
            return false
        }
    }

    /// ASCII case-insensitive equality, as header names compare.
    static func equalsIgnoringCase(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        return zip(a.utf8, b.utf8).allSatisfy { lowercased($0) == lowercased($1) }
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
    }
}
