import Foundation
import Hummingbird
import Logging

/// The agent's HTTP admin endpoint: GET /status, GET /metrics, POST /hooks/git.
/// Binds to loopback unless told otherwise.
public enum AdminServer {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// When set, POST /hooks/git must carry a valid X-Hub-Signature-256.
        public var webhookSecret: String?

        public init(host: String = "127.0.0.1", port: Int = 9400, webhookSecret: String? = nil) {
            self.host = host
            self.port = port
            self.webhookSecret = webhookSecret
        }

        /// Parses `HOST:PORT`.
        public static func parse(_ text: String, secret: String?) -> Configuration? {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
                return nil
            }
            var host = String(text[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return host.isEmpty ? nil : Configuration(host: host, port: port, webhookSecret: secret)
        }
    }

    /// Builds the router of the admin endpoint.
    public static func router(status: @escaping @Sendable () async throws -> [UInt8], metrics: AgentMetrics?,
                              webhookSecret: String?, trigger: @escaping @Sendable () -> Void) -> Router<BasicRequestContext> {
        let router = Router()
        let signature = webhookSecret.map(WebhookSignature.init(secret:))
        router.get("/status") { _, _ -> Response in
            let body = try await status()
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.get("/metrics") { _, _ -> Response in
            let text = metrics?.render() ?? ""
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.post("/hooks/git") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 5 << 20)
            if let signature {
                let header = request.headers.first { $0.name.canonicalName == "x-hub-signature-256" }?.value
                guard signature.verify(Array(buffer: body), header: header) else {
                    return Response(status: .unauthorized, body: .init(byteBuffer: ByteBuffer(string: "bad or missing X-Hub-Signature-256\n")))
                }
            }
            trigger()
            return Response(status: .accepted, body: .init(byteBuffer: ByteBuffer(string: "reconcile triggered\n")))
        }
        return router
    }
}
