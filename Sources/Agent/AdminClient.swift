import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Talks to a running agent's admin endpoint over plain HTTP/1.1 (loopback, no TLS): `teal reconcile`, `teal
/// resume` and `teal events -f` use it.
public struct AdminClient: Sendable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// The address given, else the one the agent of `dataDir` wrote when it bound, else the default.
    public static func locate(admin: String?, dataDir: String) -> AdminClient? {
        let text = admin ?? (try? String(contentsOfFile: AdminServer.addressFile(dataDir: dataDir), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "127.0.0.1:9400"
        return AdminServer.Configuration.parse(text, secret: nil).map { AdminClient(host: $0.host, port: $0.port) }
    }

    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// One request; the status and the body.
    public func request(_ method: String, _ path: String, timeout: TimeInterval = 10) throws -> (status: Int, body: String) {
        var status = 0
        var body = Data()
        try exchange(method, path, timeout: timeout) { code, chunk in
            status = code
            body.append(chunk)
            return true
        }
        return (status, String(decoding: body, as: UTF8.self))
    }

    /// Streams the body of a GET to `line`, one line at a time, until the agent closes or `line` returns false.
    public func follow(_ path: String, line: (String) -> Bool) throws {
        var pending = Data()
        var status = 0
        try exchange("GET", path, timeout: nil) { code, chunk in
            status = code
            guard code == 200 else { return true }
            pending.append(chunk)
            while let newline = pending.firstIndex(of: 0x0A) {
                let text = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                if !line(text) { return false }
            }
            return true
        }
        if status != 200 { throw Failure(description: "the agent at \(address) answered \(status)") }
    }

    /// Sends the request (HTTP/1.1, `Connection: close`) and hands the body to `body` as it arrives, de-chunked.
    private func exchange(_ method: String, _ path: String, timeout: TimeInterval?, body: (Int, Data) -> Bool) throws {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw Failure(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure(description: "cannot open a socket") }
        defer { close(fd) }
        if let timeout {
            var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw Failure(description: "no teal agent answers at \(address) (\(String(cString: strerror(errno))))")
        }
        let head = "\(method) \(path) HTTP/1.1\r\nHost: \(address)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        let sent = head.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        guard sent == head.utf8.count else { throw Failure(description: "cannot send to \(address)") }

        var buffer = [UInt8](repeating: 0, count: 16384)
        var received = Data()
        var status = 0
        var headerDone = false
        var chunked = false
        var decoder = ChunkDecoder()
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "reading from \(address): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            received.append(contentsOf: buffer[0..<n])
            if !headerDone {
                guard let end = received.range(of: Data("\r\n\r\n".utf8)) else { continue }
                let headText = String(decoding: received[received.startIndex..<end.lowerBound], as: UTF8.self)
                let lines = headText.components(separatedBy: "\r\n")
                status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
                chunked = lines.dropFirst().contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
                received = Data(received[end.upperBound...])
                headerDone = true
            }
            let chunk = chunked ? decoder.feed(received) : received
            received = Data()
            if !chunk.isEmpty || !chunked, !body(status, chunk) { return }
            if chunked && decoder.finished { break }
        }
        if !headerDone { throw Failure(description: "the agent at \(address) closed without answering") }
        _ = body(status, Data())
    }
}

/// Undoes `Transfer-Encoding: chunked` incrementally.
struct ChunkDecoder {
    private var pending = Data()
    private var remaining = 0
    private(set) var finished = false

    mutating func feed(_ data: Data) -> Data {
        pending.append(data)
        var out = Data()
        while !finished {
            if remaining > 0 {
                let take = min(remaining, pending.count)
                if take == 0 { break }
                out.append(pending.prefix(take))
                pending.removeFirst(take)
                remaining -= take
                if remaining == 0 { remaining = -2 }
                continue
            }
            if remaining == -2 {
                guard pending.count >= 2 else { break }
                pending.removeFirst(2)
                remaining = 0
                continue
            }
            guard let end = pending.range(of: Data("\r\n".utf8)) else { break }
            let sizeText = String(decoding: pending[pending.startIndex..<end.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            pending.removeSubrange(pending.startIndex..<end.upperBound)
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { finished = true; break }
            if size == 0 { finished = true; break }
            remaining = size
        }
        return out
    }
}
