import Foundation

/// A recording HTTP server of the test's own: a small Python `http.server` as a real process on a free loopback
/// port, which writes every request it gets (method, path, headers, body) as a JSON line to a file and answers
/// with a fixed status. Stopped by pid.
public final class RecordingServer: @unchecked Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// By lower-case name.
        public var headers: [String: String]
        public var body: Data
        public var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
    }

    public let port: Int
    let dir: String
    private let server: ServerProcess

    static let script = #"""
        import base64, http.server, json, os, sys
        port_file, log_file, status = sys.argv[1], sys.argv[2], int(sys.argv[3])

        class Recorder(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                entry = {"method": self.command, "path": self.path,
                         "headers": {k.lower(): v for k, v in self.headers.items()},
                         "body": base64.b64encode(body).decode()}
                with open(log_file, "a") as f:
                    f.write(json.dumps(entry) + "\n")
                reply = b'{"id": 1}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = record
            do_PUT = record
            do_GET = record

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        with open(port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(port_file + ".tmp", port_file)
        server.serve_forever()
        """#

    /// Starts the server; every request is answered with `status`.
    public init(status: Int = 201) throws {
        dir = NSTemporaryDirectory() + "teal-recorder-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Self.script.write(toFile: dir + "/recorder.py", atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: dir + "/requests.jsonl", contents: nil)
        server = try ServerProcess(["python3", dir + "/recorder.py", dir + "/port", dir + "/requests.jsonl", String(status)],
                                   log: dir + "/server.log")
        let deadline = Date().addingTimeInterval(10)
        var port: Int?
        while port == nil && Date() < deadline {
            port = (try? String(contentsOfFile: dir + "/port", encoding: .utf8)).flatMap { Int($0) }
            if port == nil { usleep(20_000) }
        }
        guard let port else {
            server.stop()
            throw NSError(domain: "recorder", code: 1, userInfo: [NSLocalizedDescriptionKey: "the recording server did not start: "
                + ((try? String(contentsOfFile: dir + "/server.log", encoding: .utf8)) ?? "")])
        }
        self.port = port
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Every request so far, in the order they came.
    public func requests() -> [Request] {
        let text = (try? String(contentsOfFile: dir + "/requests.jsonl", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let entry = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let method = entry["method"] as? String, let path = entry["path"] as? String,
                  let headers = entry["headers"] as? [String: String], let body = (entry["body"] as? String).flatMap({ Data(base64Encoded: $0) })
            else { return nil }
            return Request(method: method, path: path, headers: headers, body: body)
        }
    }

    public func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}
