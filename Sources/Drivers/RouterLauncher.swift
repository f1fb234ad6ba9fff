import Foundation
import Runtime
import Traffic

/// Makes sure a data dir's router runs, starting `teal router` detached when it does not answer.
public struct RouterLauncher: Sendable {
    public let dataDir: String
    /// argv of the router process; by default this executable's `router --data-dir D`.
    public let command: [String]

    public init(dataDir: String, command: [String]? = nil) {
        self.dataDir = dataDir
        self.command = command ?? [DetachedProcess.currentExecutable, "router", "--data-dir", dataDir]
    }

    public var client: RouterClient { RouterClient(dataDir: dataDir) }

    /// Whether a router process holds this data dir: the pid it recorded at start names a live process.
    /// A router that does not answer its admin socket still counts, since it may still forward traffic.
    public var processIsRunning: Bool {
        guard let text = try? String(contentsOfFile: RouterPaths(dataDir: dataDir).pid, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return false }
        return ProcessIdentity.of(pid: pid) != nil
    }

    /// The router's pid, after starting it if needed.
    @discardableResult
    public func ensureRunning(timeout: Duration = .seconds(10)) async throws -> Int32 {
        let client = self.client
        if let pid = await offThePool({ client.ping() }) { return pid }
        let paths = RouterPaths(dataDir: dataDir)
        _ = try DetachedProcess.spawn(argv: command, environment: ProcessInfo.processInfo.environment,
                                      directory: dataDir, logPath: paths.log)
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if let pid = await offThePool({ client.ping() }) { return pid }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RuntimeError("the router did not come up within \(timeout); see \(paths.log)")
    }
}
