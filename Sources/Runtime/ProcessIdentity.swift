import Foundation

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
