import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Time

let clock = ContinuousClock()

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Sleeps the calling thread (the benchmark is sequential on purpose: one thing in flight at a time).
func pause(_ seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// Calls `body` every `every` seconds until it returns a value or `timeout` passes.
func waitFor<T>(_ what: String, timeout: Double, every: Double = 0.1, _ body: () throws -> T?) throws -> T {
    let deadline = clock.now + .milliseconds(Int(timeout * 1000))
    while true {
        if let value = try body() { return value }
        if clock.now >= deadline { throw BenchmarkError("timed out after \(timeout) s waiting for \(what)") }
        pause(every)
    }
}

// MARK: - Processes

/// Output and exit status of a program that ran to its end.
struct Finished {
    var status: Int32
    var output: String
}

/// Runs a program to its end, bounded by `timeout` (SIGKILL after it). Output is captured through a file,
/// so a daemon it leaves behind cannot hold a pipe open.
@discardableResult
func run(_ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil,
         timeout: Double = 120, check: Bool = true) throws -> Finished {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if let environment { process.environment = environment }
    let outputPath = NSTemporaryDirectory() + "teal-agent-bench-out-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    process.standardOutput = output
    process.standardError = output
    process.standardInput = FileHandle.nullDevice
    try process.run()
    try? output.close()
    let deadline = clock.now + .milliseconds(Int(timeout * 1000))
    while process.isRunning {
        if clock.now >= deadline {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw BenchmarkError("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
        }
        pause(0.001)
    }
    let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    let result = Finished(status: process.terminationStatus, output: text)
    if check && result.status != 0 {
        throw BenchmarkError("\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(text)")
    }
    return result
}

/// The full path of a program on PATH.
func which(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

// MARK: - /proc

struct ProcSample {
    /// utime + stime, seconds.
    var cpu: Double
    var rssKB: Int
    var peakRSSKB: Int
    /// RSS split: private heap and stacks, pages of mapped files (the binary and its libraries).
    var anonKB: Int = 0
    var fileKB: Int = 0
    /// Proportional set size: shared pages (the router runs the same binary and libraries) counted in part.
    var pssKB: Int = 0
    var threads: Int
}

let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

/// CPU time (utime + stime) and memory of a process from /proc.
func procSample(pid: Int32) -> ProcSample? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    // Fields after "pid (comm)": state is field 3, utime 14, stime 15.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
    var sample = ProcSample(cpu: (utime + stime) / ticksPerSecond, rssKB: 0, peakRSSKB: 0, threads: 0)
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") {
        let parts = line.split(separator: ":", maxSplits: 1)
        guard parts.count == 2 else { continue }
        let value = Int(parts[1].trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") ?? 0
        switch parts[0] {
        case "VmRSS": sample.rssKB = value
        case "VmHWM": sample.peakRSSKB = value
        case "RssAnon": sample.anonKB = value
        case "RssFile": sample.fileKB = value
        case "Threads": sample.threads = value
        default: break
        }
    }
    if let rollup = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8),
       let line = rollup.split(separator: "\n").first(where: { $0.hasPrefix("Pss:") }) {
        sample.pssKB = Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
    return sample
}

/// CPU seconds per thread name of a process (threads of the same name summed).
func threadCPU(pid: Int32) -> [String: Double] {
    var result: [String: Double] = [:]
    for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
              let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
        let name = String(stat[stat.index(after: open)..<close])
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { continue }
        result[name, default: 0] += (utime + stime) / ticksPerSecond
    }
    return result
}

// MARK: - Loopback networking

/// A loopback port nothing listens on now (the kernel's choice), not handed out before by this process.
nonisolated(unsafe) private var handedOut: Set<Int> = []

func freePort() throws -> Int {
    for _ in 0..<100 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchmarkError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { continue }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        if handedOut.insert(port).inserted { return port }
    }
    throw BenchmarkError("no free loopback port")
}

struct HTTPResponse {
    var status: Int
    var body: String
}

/// One HTTP/1.1 request on a fresh connection to 127.0.0.1:`port` (Connection: close), bounded by `timeout`.
/// nil when the connection fails or the answer is not HTTP.
func http(_ method: String, port: Int, path: String, body: String = "", headers: [String: String] = [:],
          timeout: Double = 2) -> HTTPResponse? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    for (name, value) in headers { request += "\(name): \(value)\r\n" }
    request += "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    let bytes = Array(request.utf8)
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n > 0 else { return nil }
        sent += n
    }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        received.append(contentsOf: buffer[0..<n])
        if received.count > 1 << 20 { break }
        if let parsed = parseComplete(received) { return parsed }
    }
    return parseComplete(received) ?? parseHead(received)
}

/// A full response when its Content-Length worth of body has arrived.
private func parseComplete(_ bytes: [UInt8]) -> HTTPResponse? {
    guard let head = parseHead(bytes) else { return nil }
    let text = String(decoding: bytes, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { return nil }
    let headerText = text[..<split.lowerBound].lowercased()
    if let line = headerText.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
       let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) {
        let bodyBytes = bytes.count - text[..<split.upperBound].utf8.count
        guard bodyBytes >= length else { return nil }
    } else {
        return nil
    }
    return head
}

private func parseHead(_ bytes: [UInt8]) -> HTTPResponse? {
    let text = String(decoding: bytes, as: UTF8.self)
    guard text.hasPrefix("HTTP/1."), let split = text.range(of: "\r\n\r\n") else { return nil }
    let statusLine = text[..<(text.range(of: "\r\n")?.lowerBound ?? split.lowerBound)].split(separator: " ")
    guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
    return HTTPResponse(status: status, body: String(text[split.upperBound...]))
}

/// The color named by the JSON `teal_color` in the body of GET / on `port`, if it answers 200.
func servingColor(port: Int, timeout: Double = 1) -> String? {
    guard let response = http("GET", port: port, path: "/", timeout: timeout), response.status == 200,
          let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any] else { return nil }
    return object["teal_color"] as? String
}

// MARK: - Statistics

struct Summary {
    var count: Int
    var median: Double
    var p90: Double
    var p99: Double
    var max: Double
    var min: Double

    init(_ values: [Double]) {
        let sorted = values.sorted()
        count = sorted.count
        func rank(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            // Nearest rank.
            let index = Swift.max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1)
            return sorted[Swift.min(index, sorted.count - 1)]
        }
        if sorted.isEmpty {
            median = .nan
        } else if sorted.count % 2 == 1 {
            median = sorted[sorted.count / 2]
        } else {
            median = (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        p90 = rank(0.9)
        p99 = rank(0.99)
        max = sorted.last ?? .nan
        min = sorted.first ?? .nan
    }
}

func ms(_ seconds: Double) -> String { String(format: "%.0f ms", seconds * 1000) }

/// A line on standard output, written at once (progress shows while the benchmark runs).
func say(_ line: String = "") {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
