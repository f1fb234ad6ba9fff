import NIOCore
import NIOHTTP1

/// Serves one client connection of one app: each request goes to the upstream the route table
/// picks when its head arrives, so a route switch moves keep-alive clients at their next request.
final class ProxyHandler: ChannelInboundHandler, RemovableChannelHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
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
    }

    private static let maxAttempts = 3

    private let app: String
    private let table: RouteTable
    private let pools: UpstreamPools
    private var phase = Phase.idle
    private var context: ChannelHandlerContext?
    private var clientAddress: String?

    init(app: String, table: RouteTable, pools: UpstreamPools) {
        self.app = app
        self.table = table
        self.pools = pools
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientAddress = context.channel.remoteAddress?.ipAddress
    }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    // MARK: Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            begin(head, context: context)
        case .body(let buffer):
            guard case .forwarding(let exchange) = phase, !exchange.finished else { return }
            exchange.hadBody = true
            forward(.body(.byteBuffer(buffer)), in: exchange, flush: true)
        case .end:
            switch phase {
            case .idle:
                return
            case .answering(let status, let message, let head):
                phase = .idle
                respond(status, message, to: head, context: context)
            case .forwarding(let exchange):
                exchange.requestEnded = true
                if !exchange.finished { forward(.end(nil), in: exchange, flush: true) }
            }
        }
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
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        var head = head
        if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            head.headers.remove(name: "expect")
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        guard let target = table.select(app: app) else {
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
        let chunked = head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        var headers = HopByHop.stripped(head.headers)
        if chunked && !headers.contains(name: "content-length") { headers.add(name: "transfer-encoding", value: "chunked") }
        if let clientAddress {
            let previous = headers[canonicalForm: "x-forwarded-for"].joined(separator: ", ")
            headers.replaceOrAdd(name: "x-forwarded-for", value: previous.isEmpty ? clientAddress : "\(previous), \(clientAddress)")
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
    }

    private func acquireConnection(for exchange: Exchange, context: ChannelHandlerContext) {
        let key = UpstreamKey(host: exchange.target.host, port: exchange.target.port)
        let pool = pools.pool(for: context.eventLoop)
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
        connection.send(.head(exchange.upstreamHead), flush: false)
        if exchange.hadBody {
            for part in exchange.pending { connection.send(part, flush: false) }
        } else if exchange.requestEnded {
            connection.send(.end(nil), flush: false)
        }
        exchange.pending.removeAll()
        connection.flush()
    }

    private func forward(_ part: HTTPClientRequestPart, in exchange: Exchange, flush: Bool) {
        if let connection = exchange.connection {
            connection.send(part, flush: flush)
        } else {
            exchange.pending.append(part)
        }
    }

    // MARK: Upstream side

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        guard let context, case .forwarding(let exchange) = phase else { return }
        exchange.responseStarted = true
        let clientHead = exchange.clientHead
        var headers = HopByHop.stripped(head.headers)
        var keepAlive = clientHead.isKeepAlive
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
                pools.pool(for: context.eventLoop).put(connection)
            } else {
                connection.close()
            }
            exchange.connection = nil
        }
        finish(exchange, failed: false)
        phase = .idle
        let close = exchange.closeAfterResponse
        if close {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    func upstreamFailed(_ error: any Error) {
        guard let context, case .forwarding(let exchange) = phase, !exchange.finished else { return }
        exchange.connection = nil
        if exchange.responseStarted {
            finish(exchange, failed: true)
            phase = .idle
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
        guard let channel = context?.channel else { return }
        try? channel.syncOptions?.setOption(.autoRead, value: writable)
    }

    // MARK: Answers of the router itself

    private func answerFailure(of exchange: Exchange) {
        finish(exchange, failed: true)
        let message = "color \(exchange.target.color) of \(app) is unreachable\n"
        if exchange.requestEnded {
            phase = .idle
            if let context { respond(.badGateway, message, to: exchange.clientHead, context: context) }
        } else {
            phase = .answering(status: .badGateway, message: message, head: exchange.clientHead)
        }
    }

    private func finish(_ exchange: Exchange, failed: Bool) {
        guard !exchange.finished else { return }
        exchange.finished = true
        exchange.target.stats.inFlight.subtract(1, ordering: .relaxed)
        if failed { exchange.target.stats.failures.add(1, ordering: .relaxed) }
    }

    private func respond(_ status: HTTPResponseStatus, _ message: String, to head: HTTPRequestHead,
                         context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(message.utf8.count))
        if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: message)))), promise: nil)
        }
        if head.isKeepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

/// Headers that describe one connection and are never forwarded (RFC 9110 §7.6.1).
enum HopByHop {
    static let names: [String] = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade",
    ]

    static func stripped(_ headers: HTTPHeaders) -> HTTPHeaders {
        var result = headers
        for value in headers[canonicalForm: "connection"] { result.remove(name: String(value)) }
        for name in names where result.contains(name: name) { result.remove(name: name) }
        return result
    }
}
