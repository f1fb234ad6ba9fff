import Foundation

/// An HTTP forward proxy of the test's own (a Python script, a real process on a free loopback port): `CONNECT`
/// tunnels for https, absolute-form requests (`GET http://host/path`) for plain http, each passed on with
/// `Connection: close` and relayed byte for byte. Every request it gets is logged as `CONNECT host:port` or
/// `METHOD http://...`, so a test can tell that a client went through it.
public struct ForwardProxy {
    public let port: Int
    public let dir: String
    private let server: ServerProcess

    public init() throws {
        dir = NSTemporaryDirectory() + "teal-proxy-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        port = freeLoopbackPort()
        try Self.script.write(toFile: "\(dir)/proxy.py", atomically: true, encoding: .utf8)
        server = try ServerProcess(["python3", "\(dir)/proxy.py", String(port), "\(dir)/requests.log"], log: "\(dir)/proxy.log")
        waitForPort(port)
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// The requests so far, a line each.
    public var requests: String { (try? String(contentsOfFile: "\(dir)/requests.log", encoding: .utf8)) ?? "" }

    public func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    static let script = #"""
        import socket, sys, threading
        from urllib.parse import urlsplit

        port, log = int(sys.argv[1]), sys.argv[2]
        lock = threading.Lock()

        def record(line):
            with lock, open(log, "a") as f:
                f.write(line + "\n")

        def pipe(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def handle(client):
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    client.close()
                    return
                head += data
            head, rest = head.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            record("%s %s" % (method, target))
            if method == "CONNECT":
                host, _, p = target.rpartition(":")
                upstream = socket.create_connection((host, int(p)))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
            else:
                url = urlsplit(target)
                upstream = socket.create_connection((url.hostname, url.port or 80))
                path = url.path + ("?" + url.query if url.query else "")
                fields = [l for l in lines[1:] if not l.lower().startswith(("proxy-", "connection:"))]
                request = "\r\n".join(["%s %s %s" % (method, path, version)] + fields + ["Connection: close", "", ""])
                upstream.sendall(request.encode("latin-1") + rest)
            t = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
            t.start()
            pipe(client, upstream)
            t.join()
            client.close()
            upstream.close()

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
        """#
}
