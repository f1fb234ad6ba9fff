import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One agent (`teal watch` or `teal apply`) per data dir: an exclusive `flock` on
/// `<data-dir>/agent.lock`, held until the process exits.
public final class DataDirLock: Sendable {
    private let fd: Int32

    /// Takes the lock, or throws naming the process that holds it.
    public init(dataDir: String) throws {
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        let path = (dataDir as NSString).appendingPathComponent("agent.lock")
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LockError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: " ").first
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            close(fd)
            throw LockError(message: "another teal agent (watch or apply\(holder.map { ", pid \($0)" } ?? "")) is using \(dataDir); "
                + "stop it first or use another --data-dir")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    deinit { close(fd) }

    /// Says in the lock file that this agent is stopping, so `teal down` waits for it instead of refusing.
    public func markStopping() {
        ftruncate(fd, 0)
        let text = "\(getpid()) stopping\n"
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    /// Takes the lock, waiting up to `timeout` for an agent that says it is stopping; an agent that runs on
    /// is refused at once, as `init` does.
    public static func acquire(dataDir: String, waitingForStopping timeout: Duration) async throws -> DataDirLock {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            do {
                return try DataDirLock(dataDir: dataDir)
            } catch let error as LockError {
                let path = (dataDir as NSString).appendingPathComponent("agent.lock")
                let holder = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                guard holder.contains("stopping"), clock.now < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    public struct LockError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }
}
