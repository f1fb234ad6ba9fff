import Foundation
import NIOCore

/// Splits a byte stream into newline-terminated lines (without the newline).
struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    static let maxLine = 1 << 20

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > Self.maxLine { throw RouterError("admin request line too long") }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex
        let line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }
}

/// The admin protocol: one JSON `AdminRequest` per line in, one JSON `AdminResponse` per line out.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let router: Router

    init(router: Router) { self.router = router }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        let channel = context.channel
        let router = self.router
        Task { await AdminHandler.serve(line, router: router, channel: channel) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private static func serve(_ line: ByteBuffer, router: Router, channel: any Channel) async {
        guard let request = try? JSONDecoder().decode(AdminRequest.self, from: Data(line.readableBytesView)) else {
            reply(.failure("not a JSON admin request"), on: channel)
            return
        }
        reply(await router.handle(request), on: channel)
    }

    private static func reply(_ response: AdminResponse, on channel: any Channel) {
        var data = (try? JSONEncoder().encode(response)) ?? Data("{\"ok\":false}".utf8)
        data.append(UInt8(ascii: "\n"))
        channel.writeAndFlush(ByteBuffer(bytes: data), promise: nil)
    }
}
