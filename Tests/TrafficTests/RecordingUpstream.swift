import Foundation
import Synchronization

/// A color that records every byte it receives, on real sockets. It frames requests by `Content-Length` only, as
/// an app on Python's `http.server` does, and answers each with `200` and the number of body bytes it read. (A
/// chunked body, which such an app would not read, is taken as running until the bytes `0\r\n\r\n`, so that
/// long chunked uploads can be measured.)
final class RecordingUpstream: Sendable {
    struct Connection: Sendable {
        /// The first bytes received (up to `keptBytes`).
        var bytes: [UInt8] = []
        var total = 0
        /// Request heads as this color read them.
        var heads: [String] = []
        /// Bodies of up to `keptBytes`, as read by `Content-Length`.
        var bodies: [[UInt8]] = []
        /// When the router closed (or shut its sending side of) this connection.
        var closedAt: Date?
    }

    static let keptBytes = 1 << 20
    let port: Int
    private let listener: Int32
    private let state = Mutex<(connections: [Connection], stopped: Bool)>(([], false))

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 128) == 0 else {
            close(listener)
            throw TestFailure("recording upstream cannot listen")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        self.port = port
        let this = self
        Thread.detachNewThread { this.acceptLoop() }
    }

    var connections: [Connection] { state.withLock { $0.connections } }

    /// Every byte received on every connection, in order of connection.
    var received: String { String(decoding: connections.flatMap(\.bytes), as: UTF8.self) }

    func stop() {
        state.withLock { $0.stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func acceptLoop() {
        while !stopped {
            var pollfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pollfd, 1, 100) > 0 else { continue }
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { continue }
            let index = state.withLock { state -> Int in
                state.connections.append(Connection())
                return state.connections.count - 1
            }
            let this = self
            Thread.detachNewThread { this.serve(fd, index: index) }
        }
    }

    private func serve(_ fd: Int32, index: Int) {
        defer { close(fd) }
        var pending: [UInt8] = []
        var bodyLeft: Int?
        var chunkedBody = false
        var tail: [UInt8] = []
        var bodyRead = 0
        var body: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !stopped {
            var pollfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pollfd, 1, 100) > 0 else { continue }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                state.withLock { $0.connections[index].closedAt = Date() }
                return
            }
            state.withLock { state in
                let kept = max(0, min(count, Self.keptBytes - state.connections[index].bytes.count))
                state.connections[index].bytes += chunk[0..<kept]
                state.connections[index].total += count
            }
            var bytes = chunk[0..<count]
            while !bytes.isEmpty {
                if chunkedBody {
                    bodyRead += bytes.count
                    tail = Array((tail + bytes.suffix(5)).suffix(5))
                    bytes = []
                    if tail == Array("0\r\n\r\n".utf8) {
                        chunkedBody = false
                        answer(fd, index: index, bodyRead: bodyRead, body: [])
                    }
                    continue
                }
                if let left = bodyLeft {
                    let take = min(left, bytes.count)
                    if body.count + take <= Self.keptBytes { body += bytes.prefix(take) }
                    bodyRead += take
                    bodyLeft = left - take
                    bytes = bytes.dropFirst(take)
                } else {
                    pending += bytes
                    bytes = []
                    guard let end = Self.headEnd(pending) else { break }
                    let head = String(decoding: pending[0..<end], as: UTF8.self)
                    bytes = ArraySlice(pending[(end + 4)...])
                    pending = []
                    state.withLock { $0.connections[index].heads.append(head) }
                    bodyLeft = Self.contentLength(head)
                    bodyRead = 0
                    body = []
                    if head.lowercased().contains("transfer-encoding: chunked") && head.contains("X-Measure: 1") {
                        bodyLeft = nil
                        chunkedBody = true
                        tail = []
                    }
                }
                if bodyLeft == 0 {
                    answer(fd, index: index, bodyRead: bodyRead, body: body)
                    bodyLeft = nil
                }
            }
        }
    }

    private func answer(_ fd: Int32, index: Int, bodyRead: Int, body: [UInt8]) {
        state.withLock { $0.connections[index].bodies.append(body) }
        let text = String(bodyRead)
        let response = Array("HTTP/1.1 200 OK\r\nContent-Length: \(text.utf8.count)\r\n\r\n\(text)".utf8)
        _ = response.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }

    private static func contentLength(_ head: String) -> Int {
        for line in head.components(separatedBy: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" {
                return Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        return 0
    }
}
