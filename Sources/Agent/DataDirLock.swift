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
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw LockError(message: "another teal agent (watch or apply\(holder.map { ", pid \($0)" } ?? "")) is using \(dataDir); "
                + "stop it first or use another --data-dir")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    deinit { close(fd) }

    public struct LockError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }
}
