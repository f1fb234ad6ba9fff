import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A TCP port held by a listening socket for as long as the value lives.
final class HeldPort {
    let port: Int
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else { throw NSError(domain: "bind", code: Int(errno)) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        self.fd = fd
    }

    deinit { close(fd) }
}

/// Failures that are not the commit's fault heal without being charged to it, with the real binary.
@Suite(.serialized) struct HealingTests {
    /// An admin address that cannot be bound ends the agent before anything is reconciled; a second agent on a
    /// free port then applies HEAD.
    @Test(.timeLimit(.minutes(3)))
    func anAdminPortThatIsTakenStopsTheAgentBeforeAnyStep() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let held = try HeldPort()
        let head = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)

        let refused = try TealBinary.run(["watch", "--repo", story.repo.path, "--data-dir", story.data, "--admin", "127.0.0.1:\(held.port)"],
                                         timeout: 60)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("127.0.0.1:\(held.port)") && refused.stderr.contains("--admin"), "\(refused.stderr)")
        #expect(story.note(head) == nil, "no outcome may be written when the agent could not start")
        let status = try TealBinary.run(["status", "--json", "--data-dir", story.data])
        let apps = (try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["apps"] as? [Any]
        #expect(apps?.isEmpty == true, "nothing may have been started: \(status.stdout)")

        let agent = try Agent(story: story, admin: freeLoopbackPort())
        defer { agent.kill9() }
        let note = await story.waitForNote(head)
        #expect(note?.hasPrefix("outcome: applied") == true, "\(note ?? agent.output)")
        #expect(await story.servedBy() == "blue")
    }

    /// The app database is held under an exclusive lock for 3 s while a deploy commit arrives: the migration
    /// waits out the lock (retried with backoff) and the commit ends `applied`, never `failed`.
    @Test(.timeLimit(.minutes(3)))
    func aDeployOnALockedDatabaseIsRetriedAndApplied() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let agent = try Agent(story: story, admin: freeLoopbackPort())
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")

        let ready = story.data + "-locked"
        let locker = Process()
        locker.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        locker.arguments = ["python3", "-c", """
            import sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")
            open(sys.argv[2], "w").close()
            time.sleep(3)
            db.execute("COMMIT")
            """, story.data + "/shop.db", ready]
        try locker.run()
        #expect(await HTTP.eventually(timeout: 10) { FileManager.default.fileExists(atPath: ready) })

        try story.repo.write("apps/shop/environment.yaml", try story.environment() + greenColor + "\n")
        let commit = try story.repo.commit("Deploy green while the database is locked")
        let note = await story.waitForNote(commit)
        locker.waitUntilExit()
        #expect(note?.hasPrefix("outcome: applied") == true, "\(note ?? "")\n\(agent.output)")
        #expect(agent.output.contains("will retry"), "the lock must have been met and retried:\n\(agent.output)")
        #expect(!(note ?? "").contains("failed"))
    }

    /// Color health and request counts reach /metrics on the agent's own passes, without any GET /status; the
    /// current commit is one series per app; request totals are counters.
    @Test(.timeLimit(.minutes(3)))
    func metricsAreFreshWithoutAStatusCall() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let admin = freeLoopbackPort()
        let agent = try Agent(story: story, admin: admin, extra: ["--drift-interval", "500ms"])
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")
        func metrics() async -> String {
            String(decoding: (await HTTP.request("http://127.0.0.1:\(admin)/metrics"))?.body ?? Data(), as: UTF8.self)
        }
        let healthy = await HTTP.eventually(timeout: 15, every: 0.2) {
            await metrics().contains(#"teal_color_healthy{app="shop",color="blue"} 1"#)
        }
        let afterHealthy = await metrics()
        #expect(healthy, "\(afterHealthy)")
        let counted = await HTTP.eventually(timeout: 15, every: 0.2) {
            await metrics().split(separator: "\n").contains { $0.hasPrefix(#"teal_router_requests_total{app="shop",color="blue"}"#) }
        }
        let afterCounted = await metrics()
        #expect(counted, "\(afterCounted)")
        #expect(afterCounted.contains("# TYPE teal_router_requests_total counter"))

        try story.repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# touched\n")
        let second = try story.repo.commit("Touch traffic")
        #expect(await story.waitForNote(second)?.hasPrefix("outcome: applied") == true)
        let series = await HTTP.eventually(timeout: 10, every: 0.2) {
            let lines = await metrics().split(separator: "\n").filter { $0.hasPrefix("teal_app_commit_info{") }
            return lines.count == 1 && lines[0].contains(second)
        }
        let afterSwitch = await metrics()
        #expect(series, "\(afterSwitch)")
    }

    /// `teal down` right after SIGTERM waits for the agent to finish its step and go, then leaves nothing of
    /// the data dir running.
    @Test(.timeLimit(.minutes(3)))
    func downWaitsForAStoppingAgent() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let agent = try Agent(story: story, admin: freeLoopbackPort())
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")
        let blue = try #require(try pids(story).blue)
        // A green that takes 3 s to fail keeps the agent inside a step when SIGTERM arrives.
        let slow = greenColor.replacingOccurrences(of: #"["python3", "app.py"]"#, with: #"["python3", "-c", "import time; time.sleep(60)"]"#)
        try story.repo.write("apps/shop/environment.yaml",
                             try story.environment().replacingOccurrences(of: "start_timeout: 30s", with: "start_timeout: 3s") + slow + "\n")
        try story.repo.commit("A green that never answers")
        #expect(await HTTP.eventually(timeout: 30) { agent.output.contains("start green") }, "\(agent.output)")
        kill(agent.process.processIdentifier, SIGTERM)
        let down = try TealBinary.run(["down", "--data-dir", story.data, "--grace", "30"], timeout: 60)
        #expect(down.status == 0, "\(down.stderr)\n\(agent.output)")
        #expect(!agent.process.isRunning)
        #expect(!isRunning(blue), "blue must be stopped: \(down.stdout)")
        #expect(livePids(withEnvironment: "TEAL_APP=shop", dataDir: story.data).isEmpty)
        #expect(RouterPing.pid(dataDir: story.data) == nil, "the router must be stopped")
    }
}

/// A process that runs (a zombie no longer does).
func isRunning(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(after: close)...].split(separator: " ").first
    return state != "Z" && state != "X"
}

/// Live processes whose environment holds `entry` and whose working directory is under `dataDir`.
func livePids(withEnvironment entry: String, dataDir: String) -> [Int32] {
    let wanted = Array(entry.utf8)
    let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
    return pids.filter { pid in
        guard isRunning(pid), let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ"),
              data.split(separator: 0).contains(where: { Array($0) == wanted }),
              let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") else { return false }
        return cwd.hasPrefix(dataDir)
    }
}

import Traffic

enum RouterPing {
    static func pid(dataDir: String) -> Int32? { RouterClient(dataDir: dataDir, timeout: .seconds(1)).ping() }
}
