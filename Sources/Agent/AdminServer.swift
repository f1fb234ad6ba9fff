import Foundation
import Hummingbird
import Logging
import Runtime
import State

/// The agent's HTTP admin endpoint: GET /status, GET /metrics, POST /hooks/git.
/// Binds to loopback unless told otherwise.
public enum AdminServer {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// When set, POST /hooks/git must carry a valid X-Hub-Signature-256 (GitHub), X-Gitlab-Token (GitLab) or
        /// X-Gitea-Signature (Gitea; also X-Forgejo-Signature).
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

    /// What the admin endpoint serves, as closures over the agent (tests build it over anything).
    public struct Handlers: Sendable {
        /// The status report, probed live.
        public var status: @Sendable () async throws -> StatusReport
        public var metrics: AgentMetrics?
        /// Asks the watch loop for a pass now.
        public var trigger: @Sendable () -> Void
        /// The event log after an id, for one app or all.
        public var events: @Sendable (_ app: String?, _ after: Int64) throws -> [AgentEvent]
        /// The path of a color's current log file, nil when the color is unknown.
        public var logFile: @Sendable (_ app: String, _ color: String) -> String?
        /// The lines of a color's log that one journaled step wrote.
        public var stepLog: @Sendable (_ app: String, _ color: String, _ step: Int64) -> StepLog

        public init(status: @escaping @Sendable () async throws -> StatusReport, metrics: AgentMetrics?,
                    trigger: @escaping @Sendable () -> Void,
                    events: @escaping @Sendable (_ app: String?, _ after: Int64) throws -> [AgentEvent] = { _, _ in [] },
                    logFile: @escaping @Sendable (_ app: String, _ color: String) -> String? = { _, _ in nil },
                    stepLog: @escaping @Sendable (_ app: String, _ color: String, _ step: Int64) -> StepLog = { _, _, _ in .unknown }) {
            self.status = status
            self.metrics = metrics
            self.trigger = trigger
            self.events = events
            self.logFile = logFile
            self.stepLog = stepLog
        }
    }

    /// What `GET /logs/APP/COLOR?step=ID` answers.
    public enum StepLog: Sendable, Equatable {
        /// The step's lines.
        case lines(String)
        /// The step wrote to a log that was rotated or pruned since.
        case gone
        /// No such step, or it recorded no range of this color's log.
        case unknown

        /// The range a journaled step recorded, read back from the color's log files (current, rotated, archived)
        /// of a data dir.
        public static func read(store: StateStore, dataDir: String, app: String, color: String, step: Int64) -> StepLog {
            guard let range = try? store.stepLog(step), range.app == app, range.color == color else { return .unknown }
            let files = LogFiles(dataDir: dataDir).releases(app: app, color: color).flatMap(\.files)
            guard let file = LogReader.file(inode: range.inode, among: files),
                  let bytes = LogReader.bytes(file, from: range.from, to: range.to), StepLogRange.hash(bytes) == range.hash else {
                return .gone
            }
            return .lines(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// Builds the router of the admin endpoint: the status page (`GET /`), `GET /status`, `GET /metrics`,
    /// `GET /events` (JSON lines; `?follow=1` keeps streaming), `GET /logs/APP/COLOR`, `POST /reconcile` and
    /// `POST /hooks/git`.
    public static func router(_ handlers: Handlers, webhookSecret: String?) -> Router<BasicRequestContext> {
        let router = Router()
        let signature = webhookSecret.map(WebhookSignature.init(secret:))
        router.get("/") { request, _ -> Response in
            let report = try await handlers.status()
            let fragment = request.uri.queryParameters["fragment"] != nil
            let html = fragment ? StatusPage.main(report) : StatusPage.document(report)
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                                                   .init("Content-Security-Policy")!: StatusPage.contentSecurityPolicy],
                            body: .init(byteBuffer: ByteBuffer(string: html)))
        }
        router.get("/status") { _, _ -> Response in
            let body = try await handlers.status().json()
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.get("/metrics") { _, _ -> Response in
            let text = handlers.metrics?.render() ?? ""
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/events") { request, _ -> Response in
            let query = request.uri.queryParameters
            let app = query["app"].map(String.init)
            let follow = query["follow"].map { $0 == "1" || $0 == "true" } ?? false
            let requested = query["after"].flatMap { Int64($0) } ?? 0
            let first = try handlers.events(app, requested)
            guard follow else {
                let text = first.map { $0.jsonLine() + "\n" }.joined()
                return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: .init(byteBuffer: ByteBuffer(string: text)))
            }
            let after = first.last?.id ?? requested
            let body = ResponseBody { writer in
                var cursor = after
                var batch = first
                while !Task.isCancelled {
                    if !batch.isEmpty {
                        try await writer.write(ByteBuffer(string: batch.map { $0.jsonLine() + "\n" }.joined()))
                        cursor = batch.last!.id
                    }
                    try await Task.sleep(for: .milliseconds(250))
                    batch = (try? handlers.events(app, cursor)) ?? []
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "application/x-ndjson", .cacheControl: "no-store"], body: body)
        }
        router.get("/logs/:app/:color") { request, context -> Response in
            let app = context.parameters.get("app") ?? "", color = context.parameters.get("color") ?? ""
            if let step = request.uri.queryParameters["step"] {
                // Just the lines one step of a commit's timeline wrote.
                switch Int64(step).map({ handlers.stepLog(app, color, $0) }) ?? .unknown {
                case .lines(let lines):
                    return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .init("X-Content-Type-Options")!: "nosniff"],
                                    body: .init(byteBuffer: ByteBuffer(string: lines)))
                case .gone:
                    return Response(status: .gone, body: .init(byteBuffer: ByteBuffer(string:
                        "the lines of step \(step) were rotated out of \(app) \(color)'s log; see /logs/\(app)/\(color)\n")))
                case .unknown:
                    return Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: "no log lines of step \(step) for \(app) \(color)\n")))
                }
            }
            let tail = request.uri.queryParameters["tail"].flatMap { Int($0) } ?? 200
            guard let path = handlers.logFile(app, color), let lines = try? LogReader.tail(path, lines: tail) else {
                return Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: "no log for \(app) \(color)\n")))
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .init("X-Content-Type-Options")!: "nosniff"],
                            body: .init(byteBuffer: ByteBuffer(string: lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n"))))
        }
        router.post("/reconcile") { _, _ -> Response in
            handlers.trigger()
            return Response(status: .accepted, body: .init(byteBuffer: ByteBuffer(string: "reconcile triggered\n")))
        }
        router.post("/hooks/git") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 5 << 20)
            if let signature {
                let verdict = WebhookSender.check(header: { name in request.headers.first { $0.name.canonicalName == name }?.value },
                                                  body: Array(buffer: body), signature: signature)
                if case .refused(let why) = verdict {
                    return Response(status: .unauthorized, body: .init(byteBuffer: ByteBuffer(string: why + "\n")))
                }
            }
            handlers.trigger()
            return Response(status: .accepted, body: .init(byteBuffer: ByteBuffer(string: "reconcile triggered\n")))
        }
        return router
    }

    /// The file in a data dir where a running agent writes the admin address it listens on (`teal reconcile` reads it).
    public static func addressFile(dataDir: String) -> String { (dataDir as NSString).appendingPathComponent("admin.address") }
}
