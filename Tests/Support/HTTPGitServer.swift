import Foundation

/// `git http-backend` (the smart protocol, fetch and push) behind a small HTTP(S) server of the test's own:
/// Python 3's `http.server` runs the backend as CGI, over TLS with a server certificate for `localhost` signed by
/// a certificate authority made for this run with `openssl` (mbedTLS ignores IP addresses in certificates), and
/// asks for Basic authentication, a bearer token, either of them, or nothing. It listens on a free loopback port
/// and is stopped by pid; its request log (method, path, status, authentication scheme, never a credential) is
/// `log`.
public struct HTTPGitServer {
    public struct Authentication: Sendable {
        /// Basic: this user with this password.
        public var basic: (user: String, password: String)?
        /// `Authorization: Bearer` with this token.
        public var bearer: String?

        public init(basic: (user: String, password: String)? = nil, bearer: String? = nil) {
            self.basic = basic
            self.bearer = bearer
        }

        public static let none = Authentication()
    }

    /// The folder of the served repositories (`GIT_PROJECT_ROOT`).
    public let root: String
    public let port: Int
    public let tls: Bool
    /// This run's folder: certificates, the server script, logs.
    public let dir: String
    /// The certificate authority that signed the server's certificate (PEM), for `--ca-file`.
    public var caFile: String { "\(dir)/ca.pem" }
    public var log: String { "\(dir)/requests.log" }
    private let server: ServerProcess

    public init(root: String, tls: Bool = true, authentication: Authentication) throws {
        self.root = root
        self.tls = tls
        dir = NSTemporaryDirectory() + "teal-http-git-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        port = freeLoopbackPort()
        var arguments = ["python3", "\(dir)/server.py", "--port", "\(port)", "--root", root, "--log", "\(dir)/requests.log"]
        if tls {
            try Self.makeCertificates(in: dir)
            arguments += ["--cert", "\(dir)/server.pem", "--key", "\(dir)/server.key"]
        }
        // Credentials reach the server through files, never its command line.
        if let basic = authentication.basic {
            try "\(basic.user):\(basic.password)".write(toFile: "\(dir)/basic", atomically: true, encoding: .utf8)
            arguments += ["--basic", "\(dir)/basic"]
        }
        if let bearer = authentication.bearer {
            try bearer.write(toFile: "\(dir)/bearer", atomically: true, encoding: .utf8)
            arguments += ["--bearer", "\(dir)/bearer"]
        }
        try Self.script.write(toFile: "\(dir)/server.py", atomically: true, encoding: .utf8)
        server = try ServerProcess(arguments, log: "\(dir)/server.log")
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: "\(dir)/ready") && server.identity.isAlive && Date() < deadline { usleep(20_000) }
        guard FileManager.default.fileExists(atPath: "\(dir)/ready") else {
            let output = (try? String(contentsOfFile: "\(dir)/server.log", encoding: .utf8)) ?? ""
            server.stop()
            throw NSError(domain: "HTTPGitServer", code: 1, userInfo: [NSLocalizedDescriptionKey: "the HTTP git server did not start: \(output)"])
        }
    }

    /// The URL of the repository `name` under `root`, on `localhost` (the name the certificate holds).
    public func url(_ name: String) -> String { "\(tls ? "https" : "http")://localhost:\(port)/\(name)" }

    /// The request log so far.
    public var requests: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    public func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A certificate authority and a `localhost` server certificate it signed, both made now.
    static func makeCertificates(in dir: String) throws {
        try runTool(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.pem",
                     "-days", "2", "-subj", "/CN=teal test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        try runTool(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/server.key", "-out", "\(dir)/server.csr",
                     "-subj", "/CN=localhost"])
        try """
            basicConstraints=CA:FALSE
            keyUsage=critical,digitalSignature,keyEncipherment
            extendedKeyUsage=serverAuth
            subjectAltName=DNS:localhost

            """.write(toFile: "\(dir)/server.ext", atomically: true, encoding: .utf8)
        try runTool(["openssl", "x509", "-req", "-in", "\(dir)/server.csr", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca.key",
                     "-CAcreateserial", "-out", "\(dir)/server.pem", "-days", "2", "-extfile", "\(dir)/server.ext"])
    }

    /// The server: HTTP/1.1 with keep-alive, request bodies by length or chunked, the backend's CGI output sent back
    /// with a length. Receive-pack is enabled for authenticated requests (REMOTE_USER), as git http-backend wants.
    static let script = #"""
    import argparse, base64, hmac, http.server, os, ssl, subprocess, sys, threading

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--basic")
    parser.add_argument("--bearer")
    args = parser.parse_args()

    def read(path):
        with open(path) as f:
            return f.read().strip()

    BASIC = read(args.basic) if args.basic else None
    BEARER = read(args.bearer) if args.bearer else None
    log_lock = threading.Lock()

    def same(a, b):
        return hmac.compare_digest(a.encode(), b.encode())

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *values):
            pass

        def record(self, status, scheme):
            with log_lock, open(args.log, "a") as f:
                f.write("%s %s %d %s\n" % (self.command, self.path, status, scheme))

        def scheme(self):
            header = self.headers.get("Authorization", "")
            return header.split(" ", 1)[0] if header else "-"

        def authorized(self):
            if BASIC is None and BEARER is None:
                return True
            header = self.headers.get("Authorization", "")
            if BASIC is not None and header.startswith("Basic "):
                try:
                    given = base64.b64decode(header[6:].strip()).decode()
                except Exception:
                    return False
                return same(given, BASIC)
            if BEARER is not None and header.startswith("Bearer "):
                return same(header[7:].strip(), BEARER)
            return False

        def body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def reply(self, status, headers, payload):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.record(status, self.scheme())

        def serve(self):
            payload = self.body() if self.command == "POST" else b""
            if not self.authorized():
                challenges = []
                if BASIC is not None:
                    challenges.append(("WWW-Authenticate", 'Basic realm="teal test"'))
                if BEARER is not None:
                    challenges.append(("WWW-Authenticate", 'Bearer realm="teal test"'))
                return self.reply(401, challenges, b"")
            path, _, query = self.path.partition("?")
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": args.root,
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(payload)),
                "REMOTE_ADDR": self.client_address[0],
                "REMOTE_USER": "teal-test",
                "GIT_CONFIG_NOSYSTEM": "1",
            }
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            if self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            done = subprocess.run(["git", "http-backend"], input=payload, env=env, capture_output=True)
            output = done.stdout
            end = output.find(b"\r\n\r\n")
            skip = 4
            if end < 0:
                end, skip = output.find(b"\n\n"), 2
            head, content = (output[:end], output[end + skip:]) if end >= 0 else (b"", output)
            status, headers = 200, []
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split(" ")[0])
                elif name:
                    headers.append((name.strip(), value.strip()))
            if done.returncode != 0 and status == 200 and not content:
                status = 500
                sys.stderr.write(done.stderr.decode(errors="replace"))
            self.reply(status, headers, content)

        do_GET = serve
        do_POST = serve

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass

    server = Server(("127.0.0.1", args.port), Handler)
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    open(os.path.join(os.path.dirname(args.log), "ready"), "w").close()
    server.serve_forever()
    """#
}
