import Foundation
import Synchronization
import Testing
@testable import Traffic

/// What the router holds while bodies pass: its memory stays flat whatever their size and however slowly the
/// client reads. (The figures for 1 GiB are in RouterBenchmark; this checks the shape.)
@Suite(.serialized)
struct RouterResourceTests {
    private static let size = 160 << 20
    private static let allowedGrowth = 40 << 20

    @Test func aLongDownloadOrUploadDoesNotGrowTheRouter() async throws {
        let dir = try TempDir()
        let python = try PythonUpstream.start(name: "blue", in: dir.path)
        let recorder = try RecordingUpstream()
        let router = Router(dataDir: dir.path)
        try await router.start()
        let down = freePort()
        let up = freePort()
        try await router.set(app: "down", route: AppRoute(
            listen: Endpoint(host: "127.0.0.1", port: down), upstreams: ["blue": Upstream(port: python.port)], weights: ["blue": 100]))
        try await router.set(app: "up", route: AppRoute(
            listen: Endpoint(host: "127.0.0.1", port: up), upstreams: ["blue": Upstream(port: recorder.port)], weights: ["blue": 100]))

        // A client that stops reading for a while after the first MiB, then takes the rest.
        let fetched = try await measuringGrowth {
            try download(port: down, size: Self.size, pauseAfter: 1 << 20, pause: 0.5)
        }
        #expect(fetched.result == Self.size)
        #expect(fetched.growth < Self.allowedGrowth, "resident memory grew by \(fetched.growth >> 20) MiB for a download")

        let sent = try await measuringGrowth { try upload(port: up, size: Self.size, chunked: false) }
        #expect(sent.result == String(Self.size))
        #expect(sent.growth < Self.allowedGrowth, "resident memory grew by \(sent.growth >> 20) MiB for an upload")

        let chunked = try await measuringGrowth { try upload(port: up, size: Self.size, chunked: true) }
        #expect((Int(chunked.result) ?? 0) > Self.size, "\(chunked.result.prefix(200))")
        #expect(chunked.growth < Self.allowedGrowth, "resident memory grew by \(chunked.growth >> 20) MiB for a chunked upload")

        await router.stop()
        python.stop()
        recorder.stop()
        dir.remove()
    }
}

extension RouterResourceTests {
    /// Slowloris: hundreds of clients each sending a head a byte at a time. Each is cut with 408 when its head
    /// is late, the router's memory stays small, and every connection is gone afterwards.
    @Test func headsSentAByteAtATimeAreCutWith408() async throws {
        let dir = try TempDir()
        let recorder = try RecordingUpstream()
        let router = Router(dataDir: dir.path, timeouts: RouterTimeouts(requestHead: .milliseconds(600)))
        try await router.start()
        let listen = freePort()
        try await router.set(app: "shop", route: AppRoute(
            listen: Endpoint(host: "127.0.0.1", port: listen), upstreams: ["blue": Upstream(port: recorder.port)], weights: ["blue": 100]))
        let clients = 300
        let outcome = try await measuringGrowth { () -> [String] in
            let sockets = try (0..<clients).map { _ in try connectTo(port: listen) }
            defer { sockets.forEach { close($0) } }
            let head = Array("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ".utf8) + [UInt8](repeating: UInt8(ascii: "s"), count: 200)
            // One byte per client every 10 ms: the heads never end.
            let started = Date()
            var index = 0
            // Until just before the cut: bytes sent after it would make the closed socket answer with a reset.
            while Date().timeIntervalSince(started) < 0.45 && index < head.count {
                for fd in sockets { _ = withUnsafePointer(to: head[index]) { send(fd, $0, 1, Int32(MSG_NOSIGNAL)) } }
                index += 1
                usleep(10_000)
            }
            return sockets.map { fd in
                var chunk = [UInt8](repeating: 0, count: 512)
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                return count > 0 ? String(decoding: chunk[0..<count], as: UTF8.self) : ""
            }
        }
        #expect(outcome.result.filter { $0.hasPrefix("HTTP/1.1 408") }.count == clients,
                "\(outcome.result.filter { !$0.hasPrefix("HTTP/1.1 408") }.prefix(3))")
        #expect(outcome.growth < 32 << 20, "resident memory grew by \(outcome.growth >> 20) MiB")
        let deadline = Date().addingTimeInterval(3)
        while await router.openClientConnections > 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(await router.openClientConnections == 0)
        #expect(recorder.connections.isEmpty, "a head that never ended reached the color")
        await router.stop()
        recorder.stop()
        dir.remove()
    }
}

/// Runs `work` on a thread while another samples this process's resident memory; returns the result and the
/// largest growth over the resident size before it started.
func measuringGrowth<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> (result: T, growth: Int) {
    let before = residentBytes()
    let peak = Atomic<Int>(before)
    let done = Atomic<Bool>(false)
    Thread.detachNewThread {
        while !done.load(ordering: .relaxed) {
            let now = residentBytes()
            if now > peak.load(ordering: .relaxed) { peak.store(now, ordering: .relaxed) }
            usleep(5_000)
        }
    }
    defer { done.store(true, ordering: .relaxed) }
    let result = try await blocking(work)
    return (result, peak.load(ordering: .relaxed) - before)
}

/// Resident memory of this process, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// GETs `/big?size` and reads the body (pausing once after `pauseAfter` bytes); returns the body bytes read.
func download(port: Int, size: Int, pauseAfter: Int, pause: Double) throws -> Int {
    let fd = try connectTo(port: port)
    defer { close(fd) }
    let request = Array("GET /big?\(size) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var chunk = [UInt8](repeating: 0, count: 256 * 1024)
    var head: [UInt8] = []
    var headDone = false
    var body = 0
    var paused = false
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { break }
        if headDone {
            body += count
        } else {
            head += chunk[0..<count]
            guard let end = headEndIndex(head) else { continue }
            headDone = true
            body += head.count - end
        }
        if !paused && body >= pauseAfter {
            paused = true
            Thread.sleep(forTimeInterval: pause)
        }
    }
    return body
}

/// The index just past the empty line that ends a head, if it is there.
private func headEndIndex(_ bytes: [UInt8]) -> Int? {
    guard bytes.count >= 4 else { return nil }
    for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
        return index + 4
    }
    return nil
}

/// POSTs `size` bytes (with Content-Length, or as chunks of 256 KiB) and returns the color's answer body.
func upload(port: Int, size: Int, chunked: Bool) throws -> String {
    let fd = try connectTo(port: port)
    defer { close(fd) }
    let framing = chunked ? "Transfer-Encoding: chunked\r\nX-Measure: 1" : "Content-Length: \(size)"
    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw TestFailure("send failed: errno \(errno)") }
            offset += sent
        }
    }
    try write(Array("POST /upload HTTP/1.1\r\nHost: a\r\n\(framing)\r\nConnection: close\r\n\r\n".utf8))
    let piece = [UInt8](repeating: UInt8(ascii: "u"), count: 256 * 1024)
    let framed = chunked ? Array("40000\r\n".utf8) + piece + Array("\r\n".utf8) : piece
    var left = size
    while left > 0 {
        try write(framed)
        left -= piece.count
    }
    if chunked { try write(Array("0\r\n\r\n".utf8)) }
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { break }
        received += chunk[0..<count]
    }
    let text = String(decoding: received, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.1 200"), let end = text.range(of: "\r\n\r\n") else { return text }
    return String(text[end.upperBound...])
}
