import NIOCore
import Synchronization

/// Client connections open over every listener, against the limit.
final class ConnectionCount: Sendable {
    private let count = Atomic<Int>(0)
    private let maximum: Atomic<Int>

    init(limit: Int) { maximum = Atomic(limit) }

    var limit: Int { maximum.load(ordering: .relaxed) }
    var current: Int { count.load(ordering: .relaxed) }

    func setLimit(_ limit: Int) { maximum.store(limit, ordering: .relaxed) }

    /// Counts a new connection; false when it is one too many (it stays counted until `closed()`).
    func admit() -> Bool {
        let now = count.add(1, ordering: .relaxed).newValue
        let limit = maximum.load(ordering: .relaxed)
        return limit <= 0 || now <= limit
    }

    func closed() { count.subtract(1, ordering: .relaxed) }
}

/// A client connection over the limit: answered `503` at once, its sending side shut, and closed when the client
/// closes (or after a second), without reading what it sent.
final class OverloadHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        let message = "too many connections to the router\n"
        var out = context.channel.allocator.buffer(capacity: 160)
        HeadWriter.answer(status: 503, message: message, minorVersion: 1, keepAlive: false, includeBody: true, into: &out)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
