import Foundation

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
