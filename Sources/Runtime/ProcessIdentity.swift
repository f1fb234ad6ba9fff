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
        // The supervisor asks this for every color every second: one open and one read into a stack buffer,
        // parsed in place (no Foundation file read, no string splitting).
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buffer -> ProcessIdentity? in
            var count = 0
            while count < buffer.count {
                let n = read(fd, buffer.baseAddress! + count, buffer.count - count)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { break }
                count += n
            }
            guard let start = parseStartTime(UnsafeBufferPointer(rebasing: buffer[0..<count])) else { return nil }
            return ProcessIdentity(pid: pid, startTime: start)
        }
    }

    /// Field 22 (start time) of a /proc/<pid>/stat line; nil for a zombie or dead process or a line that does not
    /// parse. The command name (field 2) is in parentheses and may hold spaces and parentheses: fields are counted
    /// after the last `)`.
    static func parseStartTime(_ line: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard let close = line.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // After ") " come field 3 (state), 4, … 22: the start time is the 20th field from here.
        var field = 0
        var index = close + 1
        let space = UInt8(ascii: " ")
        while index < line.count {
            while index < line.count && line[index] == space { index += 1 }
            guard index < line.count else { return nil }
            let begin = index
            while index < line.count && line[index] != space && line[index] != UInt8(ascii: "\n") { index += 1 }
            if field == 0 {
                let state = line[begin]
                if state == UInt8(ascii: "Z") || state == UInt8(ascii: "X") { return nil }
            } else if field == 19 {
                var value: UInt64 = 0
                guard index > begin else { return nil }
                for digit in line[begin..<index] {
                    guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
                    let (times, o1) = value.multipliedReportingOverflow(by: 10)
                    let (sum, o2) = times.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
                    guard !o1, !o2 else { return nil }
                    value = sum
                }
                return value
            }
            field += 1
            if index < line.count && line[index] == UInt8(ascii: "\n") { return nil }
        }
        return nil
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
