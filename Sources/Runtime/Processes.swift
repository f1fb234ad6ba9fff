import Foundation

/// Why a color or the router could not be started, probed or stopped.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// A process as the kernel identifies it over time: pid plus start time, so a recycled pid never matches.
public struct ProcessIdentity: Codable, Hashable, Sendable {
    public var pid: Int32
    /// Field 22 of /proc/<pid>/stat: clock ticks after boot when the process started.
    public var startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// The identity of a live (not zombie) process, nil when there is none with that pid.
    public static func of(pid: Int32) -> ProcessIdentity? {
        guard pid > 0 else { return nil }
        _ = waitpid(pid, nil, WNOHANG)
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X", let start = UInt64(fields[19]) else { return nil }
        return ProcessIdentity(pid: pid, startTime: start)
    }

    /// The same process still runs.
    public var isAlive: Bool { ProcessIdentity.of(pid: pid) == self }

    /// How long the process has run, from /proc uptime and its start time.
    public var uptime: Duration? {
        guard let text = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8),
              let seconds = Double(text.split(separator: " ").first ?? "") else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return .milliseconds(Int64(max(0, seconds - Double(startTime) / ticks) * 1000))
    }

    /// SIGTERM to the process group, then SIGKILL once `grace` has passed; returns when it is gone.
    public func stop(grace: Duration) async {
        guard isAlive else { return }
        kill(-pid, SIGTERM)
        kill(pid, SIGTERM)
        if await waitForExit(within: grace) { return }
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        _ = await waitForExit(within: .seconds(5))
    }

    /// Polls until the process has exited; false when it still runs after `limit`.
    public func waitForExit(within limit: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while isAlive {
            if clock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return true
    }
}

/// Starting processes that outlive teal: their own session, no inherited descriptors, output to a log file.
public enum DetachedProcess {
    /// Spawns `argv[0]` (an absolute path) in a new session; stdin is /dev/null, stdout and stderr append to `logPath`.
    public static func spawn(argv: [String], environment: [String: String], directory: String, logPath: String) throws -> ProcessIdentity {
        guard let executable = argv.first, executable.hasPrefix("/") else {
            throw RuntimeError("internal: executable must be an absolute path, got \(argv.first ?? "nothing")")
        }
        try FileManager.default.createDirectory(atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o640)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        guard GNUSpawn.addCloseFrom(&actions, 3) == 0, GNUSpawn.addChdir(&actions, directory) == 0 else {
            throw RuntimeError("cannot prepare to start \(executable)")
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(GNUSpawn.setsid | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, cArgs, cEnv)
        guard status == 0 else {
            throw RuntimeError("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        for _ in 0..<200 {
            if let identity = ProcessIdentity.of(pid: pid) { return identity }
            usleep(1000)
        }
        throw RuntimeError("\(executable) exited immediately; see \(logPath)")
    }

    /// The teal executable this process runs from.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// glibc's GNU extensions to posix_spawn (glibc ≥ 2.34), which the Glibc module does not import.
enum GNUSpawn {
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// POSIX_SPAWN_SETSID from <spawn.h>: the child starts a new session.
    static let setsid: Int32 = 0x80

    static let addChdir: AddChdir = unsafeBitCast(symbol("posix_spawn_file_actions_addchdir_np"), to: AddChdir.self)
    static let addCloseFrom: AddCloseFrom = unsafeBitCast(symbol("posix_spawn_file_actions_addclosefrom_np"), to: AddCloseFrom.self)

    private static func symbol(_ name: String) -> UnsafeMutableRawPointer {
        guard let pointer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else {
            fatalError("glibc without \(name); teal needs glibc 2.34 or later")
        }
        return pointer
    }
}

/// Free loopback ports, chosen by binding port 0.
public enum FreePort {
    /// A port on 127.0.0.1 that nothing listened on a moment ago.
    public static func pick() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RuntimeError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw RuntimeError("cannot bind a free port: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Size-based rotation of a log file that a detached process keeps appending to (copy, then truncate).
public enum LogRotation {
    public static let defaultLimit = 10 * 1024 * 1024

    /// Moves the content of `path` to `path.1` (older ones to `.2`…`.keep`) when it exceeds `limit` bytes.
    /// Safe while the color runs: its output descriptor appends, so after the copy and the truncation its next
    /// line lands at the start of the emptied file. The size is read with one `stat`, cheap enough for every
    /// supervisor pass.
    public static func rotateIfNeeded(_ path: String, limit: Int = defaultLimit, keep: Int = 3) {
        var info = stat()
        guard stat(path, &info) == 0, Int(info.st_size) > limit else { return }
        let fm = FileManager.default
        for index in stride(from: keep - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(path).\(index)") {
            try? fm.removeItem(atPath: "\(path).\(index + 1)")
            try? fm.moveItem(atPath: "\(path).\(index)", toPath: "\(path).\(index + 1)")
        }
        try? fm.removeItem(atPath: "\(path).1")
        guard (try? fm.copyItem(atPath: path, toPath: "\(path).1")) != nil else { return }
        truncate(path, 0)
    }
}

/// Runs blocking work on its own thread so the cooperative pool stays free.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: work()) }
    }
}
