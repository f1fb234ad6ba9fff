import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Manifest
import Runtime
import State
import Traffic

/// A temporary data dir with an in-process router and a state store, for one test.
struct Sandbox {
    let dir: String
    let store: StateStore
    let router: Router

    static let app = """
    import http.server, json, os
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            code = 200
            if self.path == "/healthz":
                body = b"ok"
                if os.environ.get("UNHEALTHY"):
                    code = 500
            elif self.path == "/env":
                body = json.dumps(dict(os.environ, CWD=os.getcwd())).encode()
            else:
                body = os.environ["TEAL_COLOR"].encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    class S(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
    S(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    """

    static func make() async throws -> Sandbox {
        let dir = NSTemporaryDirectory() + "teal-runtime-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let router = Router(dataDir: dir)
        try await router.start()
        return Sandbox(dir: dir, store: try StateStore(dataDir: dir), router: router)
    }

    /// Writes the test app as the app folder of `commit` (what the materializer does from git).
    func materialize(app: String, commit: String) throws -> String {
        let folder = RuntimePaths(dataDir: dir).appFolder(app: app, commit: commit)
        if !FileManager.default.fileExists(atPath: folder) {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Self.app.write(toFile: "\(folder)/app.py", atomically: true, encoding: .utf8)
            chmod("\(folder)/app.py", 0o444)
            chmod(folder, 0o555)
        }
        return folder
    }

    func reconciler() -> ReconcilePass {
        ReconcilePass(dataDir: dir, store: store, router: RouterLauncher(dataDir: dir, command: ["/bin/false"]),
                   materialize: { app, commit in try materialize(app: app, commit: commit) })
    }

    /// Stops every color this sandbox started and the router, and removes the folder.
    func tearDown() async {
        for record in (try? store.colors()) ?? [] { await record.identity?.stop(grace: .seconds(2)) }
        await router.stop()
        let folder = "\(dir)/apps"
        if let items = FileManager.default.enumerator(atPath: folder) {
            chmod(folder, 0o755)
            while let item = items.nextObject() as? String { chmod("\(folder)/\(item)", 0o755) }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// A one-app desired state running the test app.
func desiredShop(listen: Int, live: ColorName?, colors: [ColorName: [String: String]], commit: String = "c0ffee") -> DesiredState {
    var health = HealthCheck()
    health.interval = .milliseconds(100)
    health.timeout = .seconds(1)
    health.healthyAfter = 2
    health.startTimeout = .seconds(3)
    let specs = colors.mapValues { env in
        ColorSpec(release: "1.0", command: ["python3", "app.py"], schema: "0001_init", env: env)
    }
    let environment = EnvironmentManifest(database: .sqliteRelative("shop.db"), health: health, drain: .seconds(2), colors: specs)
    let migration = Migration(name: "0001_init", number: 1, checksum: "init", operations: [])
    let app = AppManifest(name: "shop", environment: environment,
                          traffic: TrafficManifest(listen: ListenAddress(host: "127.0.0.1", port: listen), route: live.map { .live($0) } ?? .none),
                          migrations: [migration], specCommits: specs.mapValues { _ in commit })
    return DesiredState(commit: commit, apps: ["shop": app])
}

/// GET over a fresh connection; (status, body), or nil when the connection failed.
func get(port: Int, path: String = "/") async -> (status: Int, body: String)? {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.timeoutIntervalForRequest = 5
    let session = URLSession(configuration: configuration)
    defer { session.finishTasksAndInvalidate() }
    guard let (data, response) = try? await session.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!),
          let http = response as? HTTPURLResponse else { return nil }
    return (http.statusCode, String(decoding: data, as: UTF8.self))
}
