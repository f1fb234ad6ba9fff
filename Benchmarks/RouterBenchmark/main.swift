import Foundation
import NIOPosix
import Traffic

// wrk against (a) an nginx upstream directly, (b) nginx proxying to it, (c) teal's router proxying to it;
// then failed requests while teal's router switches 100 times between two upstreams under wrk load; then the
// router's resident memory while 1 GiB downloads and uploads pass through it, for fast and slow clients.

struct Measurement {
    var name: String
    var requestsPerSecond: Double
    var p50: Double
    var p99: Double
    var failures: Int
    var requests = 0
    /// CPU time of the proxy under test per request, when it was measured.
    var cpuPerRequest: Double?
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
}

let duration = Int(ProcessInfo.processInfo.environment["TEAL_BENCH_SECONDS"] ?? "") ?? 8
/// nginx and teal are measured this many times each, alternately, and compared on their medians.
let rounds = max(1, Int(ProcessInfo.processInfo.environment["TEAL_BENCH_ROUNDS"] ?? "") ?? 3)
let connections = Int(ProcessInfo.processInfo.environment["TEAL_BENCH_CONNECTIONS"] ?? "") ?? 64
/// Worker processes of the nginx proxy and event loops of teal's router: always the same number for both.
let workers = max(1, Int(ProcessInfo.processInfo.environment["TEAL_BENCH_WORKERS"] ?? "") ?? 1)
/// Bytes of each response body (0: the upstream answers "blue\n"); e.g. 4096 or 262144.
let bodyBytes = Int(ProcessInfo.processInfo.environment["TEAL_BENCH_BODY"] ?? "") ?? 0
/// "throughput", "memory", or both (the default).
let only = ProcessInfo.processInfo.environment["TEAL_BENCH_ONLY"] ?? ""
/// Size of each download and upload of the memory part, in MiB.
let memoryMiB = Int(ProcessInfo.processInfo.environment["TEAL_BENCH_MEMORY_MIB"] ?? "") ?? 1024
let cores = ProcessInfo.processInfo.activeProcessorCount
/// When the proxy workers leave cores over, the proxy under test gets the last `workers` cores to itself and
/// wrk plus the upstream share the others, the same way for nginx and for teal; otherwise nothing is pinned.
let pinned = workers < cores
let proxyCPUs = "\(cores - workers)-\(cores - 1)"
let loadCPUs = "0-\(cores - workers - 1)"
let wrkThreads = pinned ? cores - workers : 2
// A session of its own, as nginx's daemons and the agent's detached `teal router` have: with the kernel's autogroup
// scheduling (sched_autogroup_enabled), a process shares its CPU with everything else in its session, so a router left
// in the caller's session (a shell that also runs builds) got a fraction of the share a daemonised nginx gets.
if setsid() < 0 && ProcessInfo.processInfo.environment["TEAL_BENCH_SESSION"] == nil {
    // A process-group leader (what a shell starts) cannot begin a session: the benchmark runs again as a child that does.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    posix_spawnattr_setflags(&attributes, Int16(0x80))  // POSIX_SPAWN_SETSID (glibc)
    setenv("TEAL_BENCH_SESSION", "1", 1)
    let argv = CommandLine.arguments.map { strdup($0) } + [nil]
    var child: pid_t = 0
    let spawned = posix_spawn(&child, "/proc/self/exe", nil, &attributes, argv, environ)
    guard spawned == 0 else {
        FileHandle.standardError.write(Data("cannot start the benchmark in a session of its own: \(String(cString: strerror(spawned)))\n".utf8))
        exit(1)
    }
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    exit((status & 0x7f) == 0 ? (status >> 8) & 0xff : 1)
}
let work = NSTemporaryDirectory() + "teal-router-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)

func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs a program to its end and returns its output (written to a file: daemons keep pipes open);
/// with `cpus` (and pinning on) it runs under `taskset -c cpus`.
@discardableResult
func run(_ program: String, _ programArguments: [String], cpus: String? = nil, capture: Bool = true) throws -> String {
    let (executable, arguments) = if let cpus, pinned {
        ("/usr/bin/taskset", ["-c", cpus, program] + programArguments)
    } else {
        (program, programArguments)
    }
    let outputPath = "\(work)/output-\(UUID().uuidString.prefix(8)).txt"
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, capture ? outputPath : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let status = posix_spawn(&pid, executable, &actions, nil, argv, environ)
    guard status == 0 else { throw BenchmarkError(description: "cannot run \(executable): \(String(cString: strerror(status)))") }
    var exitStatus: Int32 = 0
    while waitpid(pid, &exitStatus, 0) < 0 && errno == EINTR {}
    guard capture else { return "" }
    defer { unlink(outputPath) }
    return (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
}

/// An nginx master started with its own config in the work dir; stopped with `nginx -s quit`.
struct Nginx {
    let prefix: String

    static func start(name: String, workers: Int, cpus: String, servers: String) throws -> Nginx {
        let prefix = "\(work)/\(name)"
        try FileManager.default.createDirectory(atPath: "\(prefix)/logs", withIntermediateDirectories: true)
        let config = """
        worker_processes \(workers);
        pid \(prefix)/nginx.pid;
        error_log \(prefix)/logs/error.log warn;
        events { worker_connections 4096; }
        http {
            access_log off;
            client_body_temp_path \(prefix)/body;
            proxy_temp_path \(prefix)/proxy;
            keepalive_requests 1000000;
        \(servers)
        }
        """
        try config.write(toFile: "\(prefix)/nginx.conf", atomically: true, encoding: .utf8)
        try run("/usr/sbin/nginx", ["-p", prefix, "-c", "\(prefix)/nginx.conf"], cpus: cpus, capture: false)
        guard waitForPid(prefix) else {
            throw BenchmarkError(description: "nginx \(name) did not start; see \(prefix)/logs/error.log")
        }
        return Nginx(prefix: prefix)
    }

    static func waitForPid(_ prefix: String) -> Bool {
        for _ in 0..<100 {
            if FileManager.default.fileExists(atPath: "\(prefix)/nginx.pid") { return true }
            usleep(20_000)
        }
        return false
    }

    var masterPid: Int32 {
        Int32(((try? String(contentsOfFile: "\(prefix)/nginx.pid", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    func stop() {
        _ = try? run("/usr/sbin/nginx", ["-p", prefix, "-c", "\(prefix)/nginx.conf", "-s", "quit"], capture: false)
    }
}

func seconds(_ text: Substring) -> Double? {
    let units: [(String, Double)] = [("us", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60)]
    for (suffix, factor) in units where text.hasSuffix(suffix) {
        if let value = Double(text.dropLast(suffix.count)) { return value * factor }
    }
    return nil
}

/// CPU seconds (user + system) used so far by the processes `pids`, from /proc.
func cpuSeconds(of pids: [Int32]) -> Double {
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    return pids.reduce(0) { total, pid in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let afterName = stat.range(of: ") ", options: .backwards) else { return total }
        let fields = stat[afterName.upperBound...].split(separator: " ")
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return total }
        return total + (user + system) / ticks
    }
}

/// The worker processes of an nginx master.
func children(of pid: Int32) -> [Int32] {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) else { return [] }
    return text.split(separator: " ").compactMap { Int32($0) }
}

func wrk(_ name: String, port: Int, seconds duration: Int, cpu: (() -> Double)? = nil) throws -> Measurement {
    let cpuBefore = cpu?()
    let output = try run("/usr/bin/wrk", ["-t\(wrkThreads)", "-c\(connections)", "-d\(duration)s", "--latency", "http://127.0.0.1:\(port)/"],
                         cpus: loadCPUs)
    var result = Measurement(name: name, requestsPerSecond: 0, p50: 0, p99: 0, failures: 0)
    for line in output.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if line.hasPrefix("Requests/sec:"), let value = Double(fields.last ?? "") { result.requestsPerSecond = value }
        if line.contains(" requests in "), let value = Int(fields.first ?? "") { result.requests = value }
        if fields.first == "50%", let value = seconds(fields[1]) { result.p50 = value }
        if fields.first == "99%", let value = seconds(fields[1]) { result.p99 = value }
        if line.contains("Non-2xx or 3xx responses:"), let value = Int(fields.last ?? "") { result.failures += value }
        if line.contains("Socket errors:") {
            for part in line.split(separator: ",") {
                if let value = Int(part.split(separator: " ").last ?? "") { result.failures += value }
            }
        }
    }
    guard result.requestsPerSecond > 0 else { throw BenchmarkError(description: "wrk failed: \(output)") }
    if let cpu, let cpuBefore, result.requests > 0 { result.cpuPerRequest = (cpu() - cpuBefore) / Double(result.requests) }
    return result
}

// `TEAL_BENCH_ONLY=serve`: only the router, on TEAL_BENCH_LISTEN to the upstream on TEAL_BENCH_UPSTREAM, until
// stdin closes; profile.sh runs it under callgrind.
if only == "serve" {
    let environment = ProcessInfo.processInfo.environment
    guard let listen = environment["TEAL_BENCH_LISTEN"].flatMap(Int.init), let target = environment["TEAL_BENCH_UPSTREAM"].flatMap(Int.init) else {
        throw BenchmarkError(description: "serve needs TEAL_BENCH_LISTEN and TEAL_BENCH_UPSTREAM")
    }
    let router = Router(dataDir: "\(work)/teal", eventLoops: workers)
    try await router.start()
    try await router.set(app: "bench", route: AppRoute(listen: Endpoint(host: "127.0.0.1", port: listen),
                                                       upstreams: ["blue": Upstream(port: target)], weights: ["blue": 100]))
    FileHandle.standardOutput.write(Data("ready\n".utf8))
    while readLine() != nil {}
    await router.stop()
    try? FileManager.default.removeItem(atPath: work)
    exit(0)
}

// `TEAL_BENCH_ONLY=floor`: the same, with `FloorRelay` (bytes relayed as they come, nothing read) in place of the router.
if only == "floor" {
    let environment = ProcessInfo.processInfo.environment
    guard let listen = environment["TEAL_BENCH_LISTEN"].flatMap(Int.init), let target = environment["TEAL_BENCH_UPSTREAM"].flatMap(Int.init) else {
        throw BenchmarkError(description: "floor needs TEAL_BENCH_LISTEN and TEAL_BENCH_UPSTREAM")
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: workers)
    let server = try await FloorRelay.start(port: listen, upstream: target, group: group)
    FileHandle.standardOutput.write(Data("ready\n".utf8))
    while readLine() != nil {}
    server.close(promise: nil)
    exit(0)
}

let bluePort = freePort()
let greenPort = freePort()
let bigPort = freePort()
let nginxProxyPort = freePort()
let routerPort = freePort()

// The upstream's files: a body of `bodyBytes` for the throughput runs, a sparse file for the downloads.
let www = "\(work)/www"
try FileManager.default.createDirectory(atPath: www, withIntermediateDirectories: true)
FileManager.default.createFile(atPath: "\(www)/body", contents: Data(repeating: UInt8(ascii: "t"), count: bodyBytes))
FileManager.default.createFile(atPath: "\(www)/big", contents: nil)
truncate("\(www)/big", off_t(memoryMiB) << 20)
let answer = bodyBytes > 0 ? "root \(www); try_files /body =404;" : nil
let upstream = try Nginx.start(name: "upstream", workers: 1, cpus: loadCPUs, servers: """
    sendfile on;
    server { listen 127.0.0.1:\(bluePort); location / { \(answer ?? "return 200 \"blue\\n\";") } }
    server { listen 127.0.0.1:\(greenPort); location / { \(answer ?? "return 200 \"green\\n\";") } }
    server { listen 127.0.0.1:\(bigPort); root \(www); location / { } }
""")
let proxy = try Nginx.start(name: "proxy", workers: workers, cpus: proxyCPUs, servers: """
    upstream app { server 127.0.0.1:\(bluePort); keepalive 256; }
    server {
        listen 127.0.0.1:\(nginxProxyPort);
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # What teal's router adds to every request too.
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header Forwarded "for=$remote_addr;host=$host;proto=$scheme";
        }
    }
""")

// The router runs in this process: its threads (created from here on) inherit the proxy cores.
if pinned { try run("/usr/bin/taskset", ["-a", "-p", "-c", proxyCPUs, "\(getpid())"]) }
let router = Router(dataDir: "\(work)/teal", eventLoops: workers)
try await router.start()
func route(_ live: String) -> AppRoute {
    AppRoute(listen: Endpoint(host: "127.0.0.1", port: routerPort),
             upstreams: ["blue": Upstream(port: bluePort), "green": Upstream(port: greenPort)], weights: [live: 100])
}
try await router.set(app: "bench", route: route("blue"))
usleep(300_000)

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// wrk rounds against nginx and teal, alternately, then the switch run: the table.
func throughputSection() async throws -> String {
    var rows: [Measurement] = []
    _ = try wrk("warm-up", port: routerPort, seconds: 2)
    _ = try wrk("warm-up", port: nginxProxyPort, seconds: 2)
    rows.append(try wrk("(a) upstream direct", port: bluePort, seconds: duration))
    let nginxWorkers = children(of: proxy.masterPid)
    var nginxRounds: [Measurement] = []
    var tealRounds: [Measurement] = []
    // Alternating, and in the other order every second round, so drifting load on the machine hits both alike.
    for round in 1...rounds {
        let measureNginx = { try wrk("(b) nginx proxy, round \(round)", port: nginxProxyPort, seconds: duration) { cpuSeconds(of: nginxWorkers) } }
        let measureTeal = { try wrk("(c) teal router, round \(round)", port: routerPort, seconds: duration) { cpuSeconds(of: [getpid()]) } }
        if round % 2 == 1 {
            nginxRounds.append(try measureNginx())
            tealRounds.append(try measureTeal())
        } else {
            tealRounds.append(try measureTeal())
            nginxRounds.append(try measureNginx())
        }
    }


    func medianRow(_ name: String, _ rounds: [Measurement]) -> Measurement {
        let cpus = rounds.compactMap(\.cpuPerRequest)
        return Measurement(name: name, requestsPerSecond: median(rounds.map(\.requestsPerSecond)), p50: median(rounds.map(\.p50)),
                           p99: median(rounds.map(\.p99)), failures: rounds.reduce(0) { $0 + $1.failures },
                           requests: rounds.reduce(0) { $0 + $1.requests }, cpuPerRequest: cpus.isEmpty ? nil : median(cpus))
    }
    for round in 0..<rounds { rows.append(nginxRounds[round]); rows.append(tealRounds[round]) }
    let nginx = medianRow("(b) nginx proxy, median of \(rounds)", nginxRounds)
    let teal = medianRow("(c) teal router, median of \(rounds)", tealRounds)
    rows += [nginx, teal]

    let switchDuration = 12
    let switchTask = Task {
        try await Task.sleep(for: .seconds(1))
        for index in 0..<100 {
            try await router.set(app: "bench", route: route(index % 2 == 0 ? "green" : "blue"))
            try await Task.sleep(for: .milliseconds(90))
        }
    }
    let switched = try await Task.detached { try wrk("(d) teal router, 100 switches", port: routerPort, seconds: switchDuration) }.value
    try await switchTask.value
    let counters = await router.counters(app: "bench")["bench"] ?? [:]

    func format(_ value: Double) -> String { String(format: "%.2f ms", value * 1000) }
    var table = "| target | requests/s | p50 | p99 | failed | proxy CPU per request |\n|---|---|---|---|---|---|\n"
    for row in rows + [switched] {
        let cpu = row.cpuPerRequest.map { String(format: "%.1f µs", $0 * 1e6) } ?? "—"
        table += "| \(row.name) | \(Int(row.requestsPerSecond)) | \(format(row.p50)) | \(format(row.p99)) | \(row.failures) | \(cpu) |\n"
    }
    let throughputRatio = teal.requestsPerSecond / nginx.requestsPerSecond
    let p99Ratio = teal.p99 / nginx.p99
    table += "\n| ratio teal / nginx (medians) | value | goal |\n|---|---|---|\n"
    table += "| throughput | \(String(format: "%.2fx", throughputRatio)) | >= 1.0x \(throughputRatio >= 1.0 ? "— met" : "— missed") |\n"
    table += "| p99 latency | \(String(format: "%.2fx", p99Ratio)) | <= 1.0x \(p99Ratio <= 1.0 ? "— met" : "— missed") |\n"
    if let tealCPU = teal.cpuPerRequest, let nginxCPU = nginx.cpuPerRequest, nginxCPU > 0 {
        let cpuRatio = tealCPU / nginxCPU
        table += "| proxy CPU per request | \(String(format: "%.2fx", cpuRatio)) | <= 1.0x \(cpuRatio <= 1.0 ? "— met" : "— missed") |\n"
    }
    table += "| failed requests during 100 switches | \(switched.failures) | 0 \(switched.failures == 0 ? "— met" : "— missed") |\n"
    table += "\nPer round, teal / nginx: " + (0..<rounds).map { round in
        String(format: "throughput %.2fx, p99 %.2fx", tealRounds[round].requestsPerSecond / nginxRounds[round].requestsPerSecond,
               tealRounds[round].p99 / nginxRounds[round].p99)
    }.joined(separator: "; ") + ".\n"
    table += "\nRequests per color during the switch run: "
        + counters.keys.sorted().map { "\($0) \(counters[$0]!.requests)" }.joined(separator: ", ") + ".\n"
    let placement = pinned
        ? "proxy (nginx workers / router event loops): \(workers) on CPUs \(proxyCPUs); wrk -t\(wrkThreads) and the upstream on CPUs \(loadCPUs)"
        : "proxy (nginx workers / router event loops): \(workers); nothing pinned; wrk -t\(wrkThreads)"
    return "\(placement); \(connections) connections, \(duration) s per target and round\(bodyBytes > 0 ? ", \(bodyBytes)-byte responses" : "")\n\n" + table
}

// MARK: Memory

/// Resident memory of this process (the router runs in it), from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

func connectSocket(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw BenchmarkError(description: "connect to \(port) failed: errno \(errno)")
    }
    return fd
}

/// Keeps a transfer at `rate` bytes per second (nil: as fast as it goes) by sleeping when it is ahead.
struct Pacer {
    let rate: Double?
    let started = Date()

    func pace(_ done: Int) {
        guard let rate else { return }
        let ahead = Double(done) / rate - Date().timeIntervalSince(started)
        if ahead > 0 { usleep(useconds_t(ahead * 1e6)) }
    }
}

/// Downloads `/big` through the router; returns the body bytes read.
func download(port: Int, rate: Double?) throws -> Int {
    let fd = try connectSocket(port: port)
    defer { close(fd) }
    let request = Array("GET /big HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var chunk = [UInt8](repeating: 0, count: 256 * 1024)
    var total = 0
    var headEnd: Int?
    var head: [UInt8] = []
    let pacer = Pacer(rate: rate)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { break }
        if headEnd == nil {
            head += chunk[0..<min(count, 4096)]
            if let range = String(decoding: head, as: UTF8.self).range(of: "\r\n\r\n") {
                headEnd = String(decoding: head, as: UTF8.self)[..<range.upperBound].utf8.count
                total = count - headEnd!
            }
        } else {
            total += count
        }
        pacer.pace(total)
    }
    return total
}

/// Uploads `size` bytes through the router, with Content-Length or as 256 KiB chunks; returns the sink's answer.
func upload(port: Int, size: Int, chunked: Bool, rate: Double?) throws -> String {
    let fd = try connectSocket(port: port)
    defer { close(fd) }
    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw BenchmarkError(description: "upload: send failed, errno \(errno)") }
            offset += sent
        }
    }
    let framing = chunked ? "Transfer-Encoding: chunked" : "Content-Length: \(size)"
    try write(Array("POST /upload HTTP/1.1\r\nHost: bench\r\n\(framing)\r\nConnection: close\r\n\r\n".utf8))
    let piece = [UInt8](repeating: UInt8(ascii: "u"), count: 256 * 1024)
    let framed = chunked ? Array("40000\r\n".utf8) + piece + Array("\r\n".utf8) : piece
    let pacer = Pacer(rate: rate)
    var sent = 0
    while sent < size {
        try write(framed)
        sent += piece.count
        pacer.pace(sent)
    }
    if chunked { try write(Array("0\r\n\r\n".utf8)) }
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { break }
        received += chunk[0..<count]
    }
    let text = String(decoding: received, as: UTF8.self)
    return text.components(separatedBy: "\r\n\r\n").last ?? text
}

/// An upload sink on Python's http.server: reads every body byte (Content-Length or chunked), answers the count.
let sinkScript = """
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def read_exactly(self, left):
        n = 0
        while left:
            got = len(self.rfile.read(min(left, 1 << 20)))
            if not got:
                break
            left -= got
            n += got
        return n
    def do_POST(self):
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\\r\\n", b""):
                        pass
                    break
                n += self.read_exactly(size)
                self.rfile.readline()
        else:
            n = self.read_exactly(int(self.headers.get("Content-Length", "0")))
        body = str(n).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""

/// Resident memory growth of the process (the router in it) while 1 GiB transfers pass, fast and slow.
func memorySection() async throws -> String {
    let size = memoryMiB << 20
    let sinkPort = freePort()
    try sinkScript.write(toFile: "\(work)/sink.py", atomically: true, encoding: .utf8)
    let sink = Process()
    sink.executableURL = URL(fileURLWithPath: pinned ? "/usr/bin/taskset" : "/usr/bin/python3")
    sink.arguments = (pinned ? ["-c", loadCPUs, "/usr/bin/python3"] : []) + ["\(work)/sink.py"]
    sink.environment = ["PORT": String(sinkPort), "PATH": "/usr/bin:/bin"]
    sink.standardOutput = FileHandle.nullDevice
    sink.standardError = FileHandle.nullDevice
    try sink.run()
    // SIGKILL: the child inherits this process's signal mask, in which SIGTERM may be blocked.
    defer { kill(sink.processIdentifier, SIGKILL) }
    let downPort = freePort()
    let upPort = freePort()
    try await router.set(app: "bench-down", route: AppRoute(listen: Endpoint(host: "127.0.0.1", port: downPort),
                                                            upstreams: ["blue": Upstream(port: bigPort)], weights: ["blue": 100]))
    try await router.set(app: "bench-up", route: AppRoute(listen: Endpoint(host: "127.0.0.1", port: upPort),
                                                          upstreams: ["blue": Upstream(port: sinkPort)], weights: ["blue": 100]))
    for _ in 0..<100 {
        if let fd = try? connectSocket(port: sinkPort) {
            close(fd)
            break
        }
        usleep(50_000)
    }
    let slow = 100.0 * 1024 * 1024
    let cases: [(String, @Sendable () throws -> String)] = [
        ("download, fast client", { String(try download(port: downPort, rate: nil)) }),
        ("download, client reading 100 MiB/s", { String(try download(port: downPort, rate: slow)) }),
        ("upload with Content-Length, fast client", { try upload(port: upPort, size: size, chunked: false, rate: nil) }),
        ("upload with Content-Length, 100 MiB/s", { try upload(port: upPort, size: size, chunked: false, rate: slow) }),
        ("chunked upload, fast client", { try upload(port: upPort, size: size, chunked: true, rate: nil) }),
        ("chunked upload, 100 MiB/s", { try upload(port: upPort, size: size, chunked: true, rate: slow) }),
    ]
    var table = "| \(memoryMiB) MiB through the router | body bytes at the other end | seconds | resident memory growth | goal |\n"
        + "|---|---|---|---|---|\n"
    for (name, transfer) in cases {
        let before = residentBytes()
        let peak = Peak(before)
        let sampler = Thread {
            while !peak.done {
                peak.note(residentBytes())
                usleep(2_000)
            }
        }
        sampler.start()
        let started = Date()
        let result = try await Task.detached { try transfer() }.value
        let elapsed = Date().timeIntervalSince(started)
        peak.finish()
        let growth = Double(peak.value - before) / 1048576
        table += "| \(name) | \(result) | \(String(format: "%.1f", elapsed)) | \(String(format: "%.1f MiB", growth)) | "
            + "<= 8 MiB \(growth <= 8 ? "— met" : "— missed") |\n"
    }
    return table
}

/// The largest resident size seen by a sampling thread.
final class Peak: @unchecked Sendable {
    private let lock = NSLock()
    private var largest: Int
    private var stopped = false

    init(_ start: Int) { largest = start }

    var value: Int { lock.withLock { largest } }
    var done: Bool { lock.withLock { stopped } }
    func note(_ size: Int) { lock.withLock { largest = max(largest, size) } }
    func finish() { lock.withLock { stopped = true } }
}

if only != "memory" { print(try await throughputSection()) }
if only != "throughput" { print(try await memorySection()) }

await router.stop()
proxy.stop()
upstream.stop()
try? FileManager.default.removeItem(atPath: work)
