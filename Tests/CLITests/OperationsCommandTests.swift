import Foundation
import Testing
import TestSupport

/// The operator's commands as a user runs them: version, suspend/resume and the event log, reconcile and retry
/// without an agent, rollback's identity, dry run and empty-revert refusal, and installing into a prefix.
@Suite struct OperationsCommandTests {
    @Test func versionNamesTealLibgit2AndSQLite() throws {
        for args in [["--version"], ["version"]] {
            let r = try TealBinary.run(args)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.range(of: #"^teal \d+\.\d+\.\d+\nlibgit2 1\.\d+\.\d+\nSQLite 3\.\d+\.\d+"#, options: .regularExpression) != nil, "\(r.stdout)")
        }
        let json = try TealBinary.run(["version", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: String]
        #expect(Set(object?.keys.map { $0 } ?? []) == ["teal", "libgit2", "sqlite"])
    }

    @Test func suspendAndResumeAreRecordedAndShown() throws {
        let data = NSTemporaryDirectory() + "teal-ops-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let missing = try TealBinary.run(["suspend", "--data-dir", data])
        #expect(missing.status == 1 && missing.stderr.contains("no teal data dir"), "\(missing.stderr)")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        #expect(try TealBinary.run(["suspend", "Shop_1", "--data-dir", data]).status == 2)

        let suspended = try TealBinary.run(["suspend", "--repair-drift", "--data-dir", data])
        #expect(suspended.status == 0 && suspended.stdout.contains("suspended every app"), "\(suspended.stdout)\(suspended.stderr)")
        let status = try TealBinary.run(["status", "--data-dir", data])
        #expect(status.stdout.contains("every app is suspended by") && status.stdout.contains("drift is repaired"), "\(status.stdout)")
        let json = try TealBinary.run(["status", "--json", "--data-dir", data]).stdout
        #expect(json.contains("\"suspended\" : \"suspended by"), "\(json)")

        #expect(try TealBinary.run(["resume", "--data-dir", data, "--admin", "127.0.0.1:\(freeLoopbackPort())"]).stdout.contains("resumed every app"))
        #expect(try TealBinary.run(["resume", "--data-dir", data]).stdout.contains("nothing is suspended"))
        #expect(!(try TealBinary.run(["status", "--data-dir", data]).stdout.contains("suspended")))

        let events = try TealBinary.run(["events", "--json", "--data-dir", data])
        let kinds = events.stdout.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["kind"] as? String
        }
        #expect(kinds == ["suspend", "resume"], "\(events.stdout)\(events.stderr)")
        let text = try TealBinary.run(["events", "--data-dir", data, "--tail", "1"]).stdout
        #expect(text.split(separator: "\n").count == 1 && text.contains("resume"), "\(text)")
    }

    /// `teal events -f` and `teal logs -f` keep printing what arrives; `logs --since` and `--tail` pick lines.
    @Test func followingEventsAndLogs() async throws {
        let data = NSTemporaryDirectory() + "teal-follow-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: data + "/logs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        #expect(try TealBinary.run(["suspend", "--data-dir", data]).status == 0)
        let log = data + "/logs/shop-blue.log"
        try "1.0.0\tabc123\t\(Date().timeIntervalSince1970)\n".write(toFile: log + ".release", atomically: true, encoding: .utf8)
        let old = "2000-01-01T00:00:00Z an old line\n", recent = "\(Date().formatted(.iso8601)) a recent line\n"
        try (old + recent + "a continuation without a time\n").write(toFile: log, atomically: true, encoding: .utf8)

        let since = try TealBinary.run(["logs", "shop", "blue", "--since", "10m", "--data-dir", data]).stdout
        #expect(!since.contains("an old line") && since.contains("a recent line") && since.contains("a continuation"), "\(since)")
        #expect(try TealBinary.run(["logs", "shop", "blue", "--tail", "1", "--data-dir", data]).stdout == "a continuation without a time\n")

        func follow(_ args: [String]) throws -> (Process, Pipe) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TealBinary.path)
            process.arguments = args
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            return (process, out)
        }
        let (events, eventsOut) = try follow(["events", "-f", "--data-dir", data])
        let (logs, logsOut) = try follow(["logs", "shop", "blue", "-f", "--data-dir", data])
        defer { for p in [events, logs] { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        try await Task.sleep(nanoseconds: 1_000_000_000)
        #expect(try TealBinary.run(["resume", "--data-dir", data]).status == 0)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("a line written later\n".utf8))
        try handle.close()
        let collected = LockedText()
        for (pipe, name) in [(eventsOut, "events"), (logsOut, "logs")] {
            pipe.fileHandleForReading.readabilityHandler = { h in collected.append(name, String(decoding: h.availableData, as: UTF8.self)) }
        }
        let seen = await HTTP.eventually(timeout: 10, every: 0.1) {
            collected.text("events").contains("resumed every app") && collected.text("logs").contains("a line written later")
        }
        for pipe in [eventsOut, logsOut] { pipe.fileHandleForReading.readabilityHandler = nil }
        #expect(seen, "events: \(collected.text("events"))\nlogs: \(collected.text("logs"))")
    }

    @Test func reconcileAndRetryWithoutAnAgentSayWhatToDo() throws {
        let scratch = try CLITests().exampleRepo()
        defer { scratch.cleanup() }
        let data = scratch.path + "-data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let port = freeLoopbackPort()
        let reconcile = try TealBinary.run(["reconcile", "--data-dir", data, "--admin", "127.0.0.1:\(port)"])
        #expect(reconcile.status == 1 && reconcile.stderr.contains("no teal agent answers at 127.0.0.1:\(port)"), "\(reconcile.stderr)")

        let first = try scratch.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        try scratch.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:9090\nlive: blue\n")
        try scratch.commit("Move the listen port")
        let notTip = try TealBinary.run(["retry", first, "--repo", scratch.path, "--data-dir", data])
        #expect(notTip.status == 1 && notTip.stderr.contains("is not the tip"), "\(notTip.stderr)")
        let noOutcome = try TealBinary.run(["retry", "--repo", scratch.path, "--data-dir", data])
        #expect(noOutcome.status == 1 && noOutcome.stderr.contains("has no outcome yet"), "\(noOutcome.stderr)")
    }

    /// A listen address another process holds is found by plan and apply, before the migration or a color starts:
    /// the refusal names the address and the process.
    @Test func aListenAddressInUseIsFoundAtPlanTime() throws {
        let scratch = try CLITests().exampleRepo()
        defer { scratch.cleanup() }
        let data = scratch.path + "-data"
        defer { _ = try? TealBinary.run(["down", "--data-dir", data]); try? FileManager.default.removeItem(atPath: data) }
        let port = freeLoopbackPort()
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = ["-c", "import socket,time; s=socket.socket(); s.bind(('127.0.0.1', \(port))); s.listen(); print('ok', flush=True); time.sleep(120)"]
        let out = Pipe()
        holder.standardOutput = out
        try holder.run()
        defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        _ = out.fileHandleForReading.availableData
        try scratch.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(port)\nlive: blue\n")
        try scratch.commit("Listen where something else listens")

        let plan = try TealBinary.run(["plan", "--repo", scratch.path, "--data-dir", data])
        let expected = "listen 127.0.0.1:\(port) is in use by pid \(holder.processIdentifier) (python3)"
        #expect(plan.status == 1 && (plan.stdout + plan.stderr).contains(expected), "\(plan.stdout)\(plan.stderr)")
        let apply = try TealBinary.run(["apply", "--repo", scratch.path, "--data-dir", data])
        #expect(apply.status == 1 && (apply.stdout + apply.stderr).contains(expected), "\(apply.stdout)\(apply.stderr)")
        #expect(!apply.stdout.contains("start migration"), "nothing runs before the refusal: \(apply.stdout)")
    }

    /// A commit that changes only a file the colors run: the plan says that nothing restarts, why, and what to change.
    @Test func aChangedScriptWithoutASpecChangeIsExplainedByPlan() throws {
        let scratch = try CLITests().exampleRepo()
        defer { scratch.cleanup() }
        let data = scratch.path + "-data"
        defer { _ = try? TealBinary.run(["down", "--data-dir", data]); try? FileManager.default.removeItem(atPath: data) }
        try scratch.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(freeLoopbackPort())\nlive: blue\n")
        try scratch.commit("A free port")
        let apply = try TealBinary.run(["apply", "--repo", scratch.path, "--data-dir", data])
        #expect(apply.status == 0, "\(apply.stderr)")
        let script = scratch.path + "/apps/shop/app.py"
        try (try String(contentsOfFile: script, encoding: .utf8) + "\n# a fix\n").write(toFile: script, atomically: true, encoding: .utf8)
        try scratch.commit("Fix app.py only")
        let plan = try TealBinary.run(["plan", "--repo", scratch.path, "--data-dir", data])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("nothing to do"), "\(plan.stdout)")
        #expect(plan.stdout.contains("shop blue does not restart: apps/shop/app.py changed")
            && plan.stdout.contains("colors.blue.release in apps/shop/environment.yaml"), "\(plan.stdout)")
    }

    @Test func rollbackKeepsTheUsersIdentityShowsItsChangesAndRefusesAnEmptyRevert() throws {
        let scratch = try CLITests().exampleRepo()
        defer { scratch.cleanup() }
        try scratch.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:9090\nlive: blue\n")
        let change = try scratch.commit("Move the listen port")

        let dry = try TealBinary.run(["rollback", "--dry-run", "--repo", scratch.path])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("Would revert \(change.prefix(8))") && dry.stdout.contains("Test User <test@example.com>"), "\(dry.stdout)")
        #expect(dry.stdout.contains("change  apps/shop/traffic.yaml") && dry.stdout.contains("- listen: 127.0.0.1:9090")
            && dry.stdout.contains("+ listen: 127.0.0.1:\(CLITests.port)"), "\(dry.stdout)")
        #expect(try scratch.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines) == change, "a dry run commits nothing")

        let done = try TealBinary.run(["rollback", "--repo", scratch.path])
        #expect(done.status == 0, "\(done.stderr)")
        #expect(try scratch.git("log", "-1", "--format=%an <%ae>").trimmingCharacters(in: .whitespacesAndNewlines) == "Test User <test@example.com>")

        let again = try TealBinary.run(["rollback", change, "--repo", scratch.path])
        #expect(again.status == 1 && again.stderr.contains("nothing to revert"), "\(again.stderr)")
        let revertOfRevert = try TealBinary.run(["rollback", "--author", "Ops Person <ops@example.com>", "--repo", scratch.path])
        #expect(revertOfRevert.status == 0, "\(revertOfRevert.stderr)")
        #expect(try scratch.git("log", "-1", "--format=%an <%ae>").trimmingCharacters(in: .whitespacesAndNewlines) == "Ops Person <ops@example.com>")
        #expect(try TealBinary.run(["rollback", "--author", "nobody", "--repo", scratch.path]).status == 2)
    }

    /// A merge on the branch is reverted against its first parent by default, as `git revert -m 1` would.
    @Test func rollbackRevertsAMergeAgainstItsMainline() throws {
        let scratch = try CLITests().exampleRepo()
        defer { scratch.cleanup() }
        let before = try String(contentsOfFile: scratch.path + "/apps/shop/traffic.yaml", encoding: .utf8)
        try scratch.git("checkout", "-q", "-b", "switch")
        try scratch.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:9191\nlive: blue\n")
        try scratch.commit("Move the port on a branch")
        try scratch.git("checkout", "-q", "main")
        try scratch.write("apps/shop/notes.txt", "unrelated\n")
        try scratch.commit("Unrelated change on main")
        try scratch.git("merge", "-q", "--no-ff", "-m", "Merge the port move", "switch")

        let wrong = try TealBinary.run(["rollback", "--mainline", "3", "--repo", scratch.path])
        #expect(wrong.status == 1 && wrong.stderr.contains("--mainline must be 1 to 2"), "\(wrong.stderr)")
        let done = try TealBinary.run(["rollback", "--repo", scratch.path])
        #expect(done.status == 0, "\(done.stderr)")
        #expect(try String(contentsOfFile: scratch.path + "/apps/shop/traffic.yaml", encoding: .utf8) == before)
        #expect(FileManager.default.fileExists(atPath: scratch.path + "/apps/shop/notes.txt"), "main's own change stays")
        #expect(try scratch.git("log", "-1", "--format=%s").contains("Revert \"Merge the port move\""))
    }

    @Test func installIntoAPrefixNeedsNoUserNoSystemdAndTheUnitRaisesTheFileLimit() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let prefix = NSTemporaryDirectory() + "teal-prefix-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["\(root)/deploy/install.sh", "--prefix", prefix, "--binary", TealBinary.path]
        // No systemctl or useradd may run: a PATH with only what the prefix install needs would still find them in /usr/sbin,
        // so they are shadowed by scripts that fail loudly.
        let shadow = prefix + "-shadow"
        try FileManager.default.createDirectory(atPath: shadow, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: shadow) }
        for tool in ["systemctl", "useradd", "swift"] {
            try "#!/bin/sh\necho \"\(tool) must not run\" >&2\nexit 99\n".write(toFile: "\(shadow)/\(tool)", atomically: true, encoding: .utf8)
            chmod("\(shadow)/\(tool)", 0o755)
        }
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = "\(shadow):" + (env["PATH"] ?? "/usr/bin:/bin")
        process.environment = env
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr)")
        let version = Process()
        version.executableURL = URL(fileURLWithPath: "\(prefix)/bin/teal")
        version.arguments = ["version"]
        let out = Pipe()
        version.standardOutput = out
        try version.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        version.waitUntilExit()
        #expect(text.hasPrefix("teal "), "\(text)")
        let unit = try String(contentsOfFile: "\(prefix)/share/teal/teal.service", encoding: .utf8)
        #expect(unit.range(of: #"(?m)^LimitNOFILE=\d+$"#, options: .regularExpression) != nil)
        #expect(FileManager.default.fileExists(atPath: "\(prefix)/share/teal/manifests/apps/shop/environment.yaml"))
    }
}

final class LockedText: @unchecked Sendable {
    private let lock = NSLock()
    private var texts: [String: String] = [:]
    func append(_ key: String, _ text: String) { lock.lock(); texts[key, default: ""] += text; lock.unlock() }
    func text(_ key: String) -> String { lock.lock(); defer { lock.unlock() }; return texts[key] ?? "" }
}
