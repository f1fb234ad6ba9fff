import NIOCore
import NIOPosix

/// The least a proxy built on SwiftNIO does per request, for comparison: every client connection gets its own
/// upstream connection when it is accepted, and bytes are relayed both ways as they come — no parsing, no
/// rewriting, no pool, no route lookup, no timeouts. Not a proxy anyone could run (it cannot switch colors or
/// read a single request); what it costs per request is what NIO's event loop, channels and pipelines cost, which
/// a real proxy on NIO pays on top of its own work.
enum FloorRelay {
    /// Listens on 127.0.0.1:`port` and relays to 127.0.0.1:`upstream` until the process ends.
    static func start(port: Int, upstream: Int, group: MultiThreadedEventLoopGroup) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { client in
                let clientSide = Side()
                let upstreamSide = Side()
                clientSide.peer = upstreamSide
                upstreamSide.peer = clientSide
                ClientBootstrap(group: client.eventLoop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(upstreamSide) }
                    }
                    .connect(host: "127.0.0.1", port: upstream)
                    .whenFailure { _ in client.close(promise: nil) }
                return client.eventLoop.makeCompletedFuture { try client.pipeline.syncOperations.addHandler(clientSide) }
            }
            .bind(host: "127.0.0.1", port: port).get()
    }

    /// One end of a relayed pair: what it reads is written to the other end, flushed when the read burst ends.
    final class Side: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        var peer: Side?
        private var context: ChannelHandlerContext?
        /// Bytes read before the other end was connected.
        private var waiting: [ByteBuffer] = []

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func channelActive(context: ChannelHandlerContext) {
            // The upstream end becomes active once connected: the client's first bytes may be waiting for it.
            if let peer, !peer.waiting.isEmpty {
                for buffer in peer.waiting { context.write(wrapOutboundOut(buffer), promise: nil) }
                peer.waiting.removeAll()
                context.flush()
            }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            guard let other = peer?.context, other.channel.isActive else {
                waiting.append(buffer)
                return
            }
            other.write(wrapOutboundOut(buffer), promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            peer?.context?.flush()
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer?.context?.close(promise: nil)
            peer = nil
            self.context = nil
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
