import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TestSupport
import Traffic
@testable import Agent
#if canImport(Glibc)
import Glibc
#endif

let endToEndManifests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("manifests").path

let greenColor = """
      green:
        release: "2.0.0"
        command: ["python3", "app.py"]
        schema: 0002_split_name
    """

/// A desired-state repository with the example app on a free port, committed with the git CLI.
struct Story {
    let repo: ScratchRepo
    let data: String
    let port: Int
    var base: String { "http://127.0.0.1:\(port)" }

    init() throws {
        repo = try ScratchRepo()
        data = repo.path + "-data"
        port = freeLoopbackPort()
        let source = URL(fileURLWithPath: endToEndManifests)
        for file in try FileManager.default.subpathsOfDirectory(atPath: source.path) {
            var isDir: ObjCBool = false
            let full = source.appendingPathComponent(file).path
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue else { continue }
            var text = try String(contentsOfFile: full, encoding: .utf8)
            if file.hasSuffix("traffic.yaml") { text = text.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(port)") }
            if file.hasSuffix("environment.yaml") {
                text = text.replacingOccurrences(of: "interval: 500ms", with: "interval: 100ms")
                    .replacingOccurrences(of: "drain: 5s", with: "drain: 2s")
            }
            try repo.write(file, text)
        }
        try repo.commit("Example app")
    }

    func environment() throws -> String { try String(contentsOfFile: repo.path + "/apps/shop/environment.yaml", encoding: .utf8) }

    /// Which color served GET /, nil when nothing answered.
    func servedBy() async -> String? {
        guard let reply = await HTTP.request(base + "/"), reply.status == 200 else { return nil }
        return reply.json?["teal_color"] as? String
    }

    func note(_ commit: String) -> String? { try? repo.git("notes", "--ref=teal", "show", commit) }

    func waitForNote(_ commit: String, timeout: TimeInterval = 90) async -> String? {
        _ = await HTTP.eventually(timeout: timeout, every: 0.1) { note(commit) != nil }
        return note(commit)
    }

    func users() async -> [[String: Any]] {
        (await HTTP.request(base + "/users"))?.json?["users"] as? [[String: Any]] ?? []
    }

    /// One commit that deploys green with the migration, switches to it and removes blue: five steps.
    func commitDeploySwitchAndFinish() throws {
        let env = try environment()
        let blueBlock = env[env.range(of: "  blue:")!.lowerBound...]
        try repo.write("apps/shop/environment.yaml", env.replacingOccurrences(of: String(blueBlock), with: greenColor + "\n"))
        try repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(port)\nlive: green\n")
        try repo.commit("Deploy, switch and finish")
    }

    func cleanup() {
        _ = try? TealBinary.run(["down", "--data-dir", data], timeout: 60)
        repo.cleanup()
        try? FileManager.default.removeItem(atPath: data)
    }
}

/// `teal watch` as a child process, its output in a log file.
final class Agent {
    let process = Process()
    let log: String

    init(story: Story, admin: Int, repo: String? = nil, extra: [String] = [], environment: [String: String] = [:]) throws {
        log = story.data + "-agent.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: TealBinary.path)
        process.arguments = ["watch", "--repo", repo ?? story.repo.path, "--data-dir", story.data, "--interval", "200ms",
                             "--admin", "127.0.0.1:\(admin)"] + extra
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
        let handle = FileHandle(forWritingAtPath: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
}

struct ColorPIDs: Equatable { var blue: Int32?; var green: Int32? }

func pids(_ story: Story) throws -> ColorPIDs {
    let status = try TealBinary.run(["status", "--json", "--data-dir", story.data])
    let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
    let colors = ((json?["apps"] as? [[String: Any]])?.first?["colors"] as? [[String: Any]]) ?? []
    func pid(_ c: String) -> Int32? { (colors.first { $0["color"] as? String == c }?["pid"] as? Int).map(Int32.init) }
    return ColorPIDs(blue: pid("blue"), green: pid("green"))
}


/// The whole story, with the git CLI as the user's client and the real agent, router and colors.
@Suite(.serialized) struct EndToEndTests {

    @Test(.timeLimit(.minutes(5)))
    func deploySwitchRevertUnderLoadAndSurviveAgentKill() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let admin = freeLoopbackPort()
        var agent = try Agent(story: story, admin: admin)
        defer { agent.kill9() }

        // Blue serves; rows written in the old shape.
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")
        for name in ["Ada Lovelace", "Alan Turing", "Edsger Dijkstra"] {
            #expect(await HTTP.request(story.base + "/users", method: "POST", json: ["name": name])?.status == 201)
        }

        // Deploy green with the split-name migration: traffic untouched.
        try story.repo.write("apps/shop/environment.yaml", try story.environment() + greenColor + "\n")
        let deploy = try story.repo.commit("Deploy 2.0.0 as green")
        let deployNote = await story.waitForNote(deploy)
        #expect(deployNote?.hasPrefix("outcome: applied") == true, "\(deployNote ?? agent.output)")
        #expect(await story.servedBy() == "blue")

        // Switch: green serves and sees the old rows in the new shape.
        try story.repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: green\n")
        let switchCommit = try story.repo.commit("Switch to green")
        #expect(await HTTP.eventually(timeout: 30) { await story.servedBy() == "green" })
        let viaGreen = await story.users()
        #expect(viaGreen.contains { $0["first_name"] as? String == "Alan" && $0["last_name"] as? String == "Turing" })

        // Load while rows are written through green and the switch is reverted.
        let failures = Counter(), writes = Counter(), stop = Flag()
        let base = story.base
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var i = 0
                        while !stop.isSet {
                            i += 1
                            let reply: HTTP.Reply?
                            if worker == 0 {
                                reply = await HTTP.request(base + "/users", method: "POST",
                                                           json: ["first_name": "Load\(i)", "last_name": "Writer", "name": "Load\(i) Writer"])
                                if reply?.status == 201 { writes.add() }
                            } else {
                                reply = await HTTP.request(base + "/")
                            }
                            if reply == nil || !(200..<300).contains(reply!.status) { failures.add() }
                        }
                    }
                }
            }
        }
        for name in [("Grace", "Hopper"), ("Barbara", "Liskov")] {
            #expect(await HTTP.request(story.base + "/users", method: "POST", json: ["first_name": name.0, "last_name": name.1])?.status == 201)
        }
        try await Task.sleep(nanoseconds: 500_000_000)
        try story.repo.git("revert", "--no-edit", "HEAD")
        let revertStart = Date()
        let revert = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(await HTTP.eventually(timeout: 10, every: 0.01) { await story.servedBy() == "blue" })
        let switchBack = Date().timeIntervalSince(revertStart)
        try await Task.sleep(nanoseconds: 1_000_000_000)
        stop.set()
        await load.value
        #expect(switchBack < 1.5, "back on blue \(switchBack)s after the revert commit")
        #expect(failures.value == 0, "\(failures.value) failed requests under load")
        #expect(writes.value > 0)

        // Every row green wrote is readable by blue, in the old shape.
        let viaBlue = await story.users()
        let names = Set(viaBlue.compactMap { $0["name"] as? String })
        for expected in ["Ada Lovelace", "Grace Hopper", "Barbara Liskov", "Load1 Writer"] { #expect(names.contains(expected), "\(expected)") }
        #expect(viaBlue.count == 5 + writes.value)

        // Revert the deploy: green stops, the migration rolls back, no row is lost.
        try story.repo.git("revert", "--no-edit", deploy)
        let revertDeploy = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        let rollbackNote = await story.waitForNote(revertDeploy)
        #expect(rollbackNote?.hasPrefix("outcome: applied") == true, "\(rollbackNote ?? agent.output)")
        #expect(rollbackNote?.contains("roll back migration 0002_split_name") == true)
        #expect(try pids(story).green == nil)
        #expect(await story.users().count == 5 + writes.value)
        let schema = try TealBinary.run(["schema", "status", "--database", "sqlite://\(story.data)/shop.db"])
        #expect(schema.stdout.contains("0002_split_name  rolled_back"), "\(schema.stdout)")

        // The audit trail: a note on every commit teal reconciled.
        for commit in [deploy, switchCommit, revert, revertDeploy] {
            #expect(story.note(commit)?.hasPrefix("outcome: applied") == true, "\(commit)")
        }
        let log = try story.repo.git("log", "--notes=teal", "--format=%H %N")
        #expect(log.components(separatedBy: "outcome: applied").count - 1 >= 4)

        // kill -9 the agent: traffic continues; a new agent adopts the colors without restarting them.
        let before = try pids(story)
        agent.kill9()
        for _ in 0..<20 {
            #expect(await story.servedBy() == "blue")
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        agent = try Agent(story: story, admin: admin)
        #expect(await HTTP.eventually(timeout: 20) { await HTTP.request("http://127.0.0.1:\(admin)/status")?.status == 200 })
        try await Task.sleep(nanoseconds: 2_000_000_000)
        #expect(try pids(story) == before)
        #expect(await story.servedBy() == "blue")
        let metrics = await HTTP.request("http://127.0.0.1:\(admin)/metrics")
        #expect(metrics?.status == 200)
    }

    /// POST /hooks/git starts a pass at once; without the shared secret's signature it is refused.
    @Test(.timeLimit(.minutes(3)))
    func webhookTriggersAPassAndChecksItsSignature() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let admin = freeLoopbackPort()
        let agent = try Agent(story: story, admin: admin, extra: ["--interval", "60s", "--drift-interval", "60s", "--webhook-secret", "s3cret"])
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")

        try story.repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n# a comment\n")
        let commit = try story.repo.commit("Touch traffic.yaml")
        try await Task.sleep(nanoseconds: 700_000_000)
        #expect(story.note(commit) == nil, "the 60s poll must not have seen it yet")
        let hook = "http://127.0.0.1:\(admin)/hooks/git"
        let body = #"{"ref":"refs/heads/main"}"#
        #expect(await HTTP.request(hook, method: "POST")?.status == 401)
        #expect(story.note(commit) == nil)
        var request = URLRequest(url: URL(string: hook)!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.setValue(WebhookSignature(secret: "s3cret").sign(Array(body.utf8)), forHTTPHeaderField: "X-Hub-Signature-256")
        let sent = Date()
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 202)
        #expect(await HTTP.eventually(timeout: 10, every: 0.02) { story.note(commit) != nil })
        #expect(Date().timeIntervalSince(sent) < 2)
        #expect(story.note(commit)?.hasPrefix("outcome: applied") == true)
    }

    /// A color killed behind teal's back is restarted; a route changed behind its back is put back.
    @Test(.timeLimit(.minutes(3)))
    func driftIsRepaired() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let agent = try Agent(story: story, admin: freeLoopbackPort(), extra: ["--drift-interval", "1s"])
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")

        let before = try #require(try pids(story).blue)
        kill(before, SIGKILL)
        let restarted = await HTTP.eventually(timeout: 30) {
            guard (try? pids(story).blue).flatMap({ $0 }) != before else { return false }
            return await story.servedBy() == "blue"
        }
        #expect(restarted, "\(agent.output)")

        let client = RouterClient(dataDir: story.data)
        var route = try #require(try client.routes()["shop"])
        route.weights = [:]
        try client.set(app: "shop", route: route)
        let status = await HTTP.request(story.base + "/")?.status
        #expect(status == 503)
        #expect(await HTTP.eventually(timeout: 15) { await story.servedBy() == "blue" }, "\(agent.output)")
    }

    /// A deploy whose color never gets healthy fails: its note says why, blue keeps serving, the
    /// migration it started is rolled back by the next drift pass, and the note is not rewritten.
    /// A second agent on the same data dir is refused.
    @Test(.timeLimit(.minutes(3)))
    func aFailedDeployLeavesTheLastGoodStateServing() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let agent = try Agent(story: story, admin: freeLoopbackPort(), extra: ["--drift-interval", "1s"])
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")

        let second = try TealBinary.run(["apply", "--repo", story.repo.path, "--data-dir", story.data])
        #expect(second.status == 1)
        #expect(second.stderr.contains("another teal agent"), "\(second.stderr)")

        let broken = greenColor.replacingOccurrences(of: #"["python3", "app.py"]"#, with: #"["python3", "-c", "import time; time.sleep(120)"]"#)
        try story.repo.write("apps/shop/environment.yaml",
                             try story.environment().replacingOccurrences(of: "start_timeout: 30s", with: "start_timeout: 2s") + broken + "\n")
        let commit = try story.repo.commit("Deploy a green that never answers")
        let note = await story.waitForNote(commit)
        #expect(note?.hasPrefix("outcome: failed") == true, "\(note ?? agent.output)")
        #expect(note?.contains("start green") == true)
        #expect(await story.servedBy() == "blue")
        let database = "sqlite://\(story.data)/shop.db"
        let rolledBack = await HTTP.eventually(timeout: 20, every: 0.2) {
            ((try? TealBinary.run(["schema", "status", "--database", database]))?.stdout ?? "").contains("0002_split_name  rolled_back")
        }
        #expect(rolledBack, "\(agent.output)")
        #expect(story.note(commit) == note)
        #expect(await story.servedBy() == "blue")
    }

    /// A full deploy with the agent exiting hard at every step boundary in turn: each restart converges
    /// without repeating a finished step, and no row is lost.
    @Test(.timeLimit(.minutes(10)))
    func crashAtEveryStepBoundaryConverges() async throws {
        var boundary = 1
        while true {
            let story = try Story()
            defer { story.cleanup() }
            let first = try TealBinary.run(["apply", "--repo", story.repo.path, "--data-dir", story.data])
            #expect(first.status == 0, "\(first.stderr)")
            for name in ["Ada Lovelace", "Alan Turing"] {
                #expect(await HTTP.request(story.base + "/users", method: "POST", json: ["name": name])?.status == 201)
            }
            try story.commitDeploySwitchAndFinish()

            let plan = try TealBinary.run(["plan", "--repo", story.repo.path, "--data-dir", story.data, "--json"])
            let total = ((try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])?["steps"] as? [Any])?.count ?? 0
            #expect(total == 5, "\(plan.stdout)")
            if boundary > total { break }

            let crashed = try TealBinary.run(["apply", "--repo", story.repo.path, "--data-dir", story.data],
                                             environment: ["TEAL_CRASH_BEFORE_STEP": "\(boundary)"])
            #expect(crashed.status == 137, "boundary \(boundary): \(crashed.stderr)")
            #expect(crashed.stdout.components(separatedBy: "  → ").count - 1 == boundary - 1)
            // Traffic is still served by some color while the agent is down.
            #expect(await story.servedBy() != nil, "boundary \(boundary)")

            let resumed = try TealBinary.run(["apply", "--repo", story.repo.path, "--data-dir", story.data])
            #expect(resumed.status == 0, "boundary \(boundary): \(resumed.stderr)")
            let ran = resumed.stdout.components(separatedBy: "  → ").count - 1
            #expect(ran == total - (boundary - 1), "boundary \(boundary): resumed with \(ran) steps:\n\(resumed.stdout)")
            #expect(await story.servedBy() == "green", "boundary \(boundary)")
            let users = await story.users()
            #expect(Set(users.compactMap { $0["last_name"] as? String }) == ["Lovelace", "Turing"], "boundary \(boundary)")
            let again = try TealBinary.run(["apply", "--repo", story.repo.path, "--data-dir", story.data])
            #expect(again.stdout.contains("nothing to do"), "boundary \(boundary): \(again.stdout)")
            boundary += 1
        }
        #expect(boundary == 6)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.lock(); flag = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}
