import Foundation
import Testing
import TestSupport
@testable import Agent
#if canImport(Glibc)
import Glibc
#endif

/// Day-to-day operation against the real agent, router and colors, with the commands an operator types and the
/// status page in headless Chromium: deploy, switch and revert shown on the page (screenshots kept), `teal wait`,
/// `teal reconcile` (the agent polls only every minute), suspend and resume, a failed deploy shown as "serving the
/// last good commit" and retried after fixing its cause, per-release logs, the event log, and a crash loop.
@Suite(.serialized) struct OperationsEndToEndTests {
    static let talkative = """
        import os, runpy, sys
        print("release", os.environ["TEAL_RELEASE"], "starting", flush=True)
        runpy.run_path("app.py", run_name="__main__")
        """

    static func green(_ release: String, command: String = #"["python3", "talk.py"]"#, extra: String = "") -> String {
        """
          green:
            release: '\(release)'
            command: \(command)
            schema: 0002_split_name
        \(extra)
        """
    }

    @Test(.timeLimit(.minutes(5)))
    func operatingADeployFromTheCommandLineAndThePage() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let shots = Chromium.artifacts("demo-story")
        let admin = freeLoopbackPort()
        let page = "http://127.0.0.1:\(admin)/"
        let agent = try Agent(story: story, admin: admin, extra: ["--interval", "60s", "--drift-interval", "60s"])
        defer { agent.kill9() }
        let repo = ["--repo", story.repo.path, "--data-dir", story.data]
        func teal(_ args: [String], timeout: TimeInterval = 120) throws -> TealBinary.Result { try TealBinary.run(args, timeout: timeout) }
        func reconcile() throws {
            let r = try teal(["reconcile", "--data-dir", story.data])
            #expect(r.status == 0 && r.stdout.contains("asked the agent"), "\(r.stdout)\(r.stderr)")
        }
        let blueEnvironment = try story.environment()

        // The first commit, applied on the agent's first pass; wait says when every color is healthy.
        var wait = try teal(["wait", "--for", "healthy", "--timeout", "90s"] + repo)
        #expect(wait.status == 0, "\(wait.stderr)\n\(agent.output)")
        var dom = try Chromium.dumpDOM(page)
        #expect(dom.contains("data-app=\"shop\"") && dom.contains("data-color=\"blue\" data-state=\"healthy\" data-weight=\"100\""), "\(dom)")
        try Chromium.screenshot(page, to: "\(shots)/1-blue-serves.png")

        // Deploy green, whose release label carries markup: the page shows it as text.
        try story.repo.write("apps/shop/talk.py", Self.talkative)
        try story.repo.write("apps/shop/environment.yaml", blueEnvironment + Self.green("2.0.0<b id=injected>"))
        let deploy = try story.repo.commit("Deploy 2.0.0 as green")
        try reconcile()
        let during = Task { try? Chromium.screenshot(page, to: "\(shots)/2-deploying.png", budget: 300) }
        wait = try teal(["wait", "--timeout", "90s"] + repo)
        #expect(wait.status == 0, "\(wait.stderr)\n\(agent.output)")
        _ = await during.value
        #expect(story.note(deploy)?.hasPrefix("outcome: applied") == true)
        dom = try Chromium.dumpDOM(page)
        #expect(!dom.contains("id=\"injected\"") && !dom.contains("<b id=injected>"), "markup from a release label became an element")
        #expect(dom.contains("2.0.0&lt;b id=injected&gt;"))
        #expect(dom.contains("data-color=\"green\" data-state=\"healthy\" data-weight=\"0\""), "\(dom)")
        #expect(dom.contains("start migration 0002_split_name"), "the timeline shows the deploy's steps")
        try Chromium.screenshot(page, to: "\(shots)/3-deployed.png")

        // Switch, then revert the switch with teal rollback.
        try story.repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: green\n")
        try story.repo.commit("Switch to green")
        try reconcile()
        #expect(try teal(["wait", "--timeout", "60s"] + repo).status == 0)
        dom = try Chromium.dumpDOM(page)
        #expect(dom.contains("data-color=\"green\" data-state=\"healthy\" data-weight=\"100\""), "\(dom)")
        try Chromium.screenshot(page, to: "\(shots)/4-switched.png")
        #expect(try teal(["rollback"] + ["--repo", story.repo.path]).status == 0)
        try reconcile()
        #expect(try teal(["wait", "--timeout", "60s"] + repo).status == 0)
        #expect(await story.servedBy() == "blue")
        dom = try Chromium.dumpDOM(page)
        #expect(dom.contains("data-color=\"blue\" data-state=\"healthy\" data-weight=\"100\""), "\(dom)")
        try Chromium.screenshot(page, to: "\(shots)/5-reverted.png")

        // A new green release gets its own log file; the old release's lines are not in it.
        try story.repo.write("apps/shop/environment.yaml", blueEnvironment + Self.green("2.0.1"))
        try story.repo.commit("Green 2.0.1")
        try reconcile()
        #expect(try teal(["wait", "--timeout", "60s"] + repo).status == 0)
        let logs = try teal(["logs", "shop", "green", "--data-dir", story.data])
        #expect(logs.status == 0 && logs.stdout.contains("release 2.0.1 starting"), "\(logs.stdout)\(logs.stderr)")
        #expect(!logs.stdout.contains("release 2.0.0"), "\(logs.stdout)")
        let old = try teal(["logs", "shop", "green", "--release", "2.0.0<b id=injected>", "--data-dir", story.data])
        #expect(old.stdout.contains("release 2.0.0<b id=injected> starting"), "\(old.stdout)\(old.stderr)")
        let listed = try teal(["logs", "shop", "green", "--list", "--data-dir", story.data]).stdout
        #expect(listed.split(separator: "\n").count == 2, "\(listed)")
        #expect(try teal(["logs", "shop", "green", "--tail", "1", "--data-dir", story.data]).stdout.split(separator: "\n").count == 1)

        // Suspended: a commit for shop is held, shown as such, and runs on resume.
        var r = try teal(["suspend", "shop", "--data-dir", story.data])
        #expect(r.status == 0, "\(r.stderr)")
        try story.repo.write("apps/shop/environment.yaml", blueEnvironment + Self.green("2.0.2"))
        let held = try story.repo.commit("Green 2.0.2 while suspended")
        try reconcile()
        r = try teal(["wait", "--for", "applied", "--timeout", "3s"] + repo)
        #expect(r.status == 3 && r.stderr.contains("suspended"), "\(r.status) \(r.stderr)")
        #expect(story.note(held) == nil)
        dom = try Chromium.dumpDOM(page)
        #expect(dom.contains("class=\"suspended\""), "\(dom)")
        let status = try teal(["status", "--data-dir", story.data]).stdout
        #expect(status.contains("suspended by"), "\(status)")
        #expect(try teal(["resume", "shop", "--data-dir", story.data]).status == 0)
        #expect(try teal(["wait", "--timeout", "60s"] + repo).status == 0)
        #expect(story.note(held)?.hasPrefix("outcome: applied") == true)

        // A deploy that needs a host file not there yet fails; the last good commit keeps serving and says so;
        // once the file exists, teal retry runs the same commit again.
        let secrets = story.data + "-secrets.env"
        try story.repo.write("apps/shop/environment.yaml", blueEnvironment + Self.green("2.1.0", extra: "    env_files: [\(secrets)]"))
        let needsFile = try story.repo.commit("Green 2.1.0 with secrets")
        try reconcile()
        r = try teal(["wait", "--timeout", "60s"] + repo)
        #expect(r.status == 1, "\(r.status) \(r.stderr)")
        let summary = try teal(["status", "--data-dir", story.data]).stdout
        #expect(summary.contains("serving ") && summary.contains("HEAD \(needsFile.prefix(8)) failed"), "\(summary)")
        dom = try Chromium.dumpDOM(page)
        #expect(dom.contains("class=\"head bad\""), "\(dom)")
        try Chromium.screenshot(page, to: "\(shots)/6-head-failed.png")
        try "TOKEN=s3cret-value\n".write(toFile: secrets, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: secrets) }
        r = try teal(["retry"] + repo)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(try teal(["wait", "--timeout", "60s"] + repo).status == 0, "\(agent.output)")
        #expect(story.note(needsFile)?.hasPrefix("outcome: applied") == true)
        #expect(!(try teal(["status", "--data-dir", story.data]).stdout.contains("failed")))

        // The event log, from the command line and as JSON lines from the agent.
        let events = try teal(["events", "shop", "--json", "--tail", "1000", "--data-dir", story.data]).stdout
        let kinds = Set(events.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["kind"] as? String
        })
        #expect(kinds.isSuperset(of: ["step", "suspend", "resume", "held"]), "\(kinds)")
        let all = try teal(["events", "--data-dir", story.data]).stdout
        #expect(all.contains("retry of \(needsFile.prefix(8))") && all.contains("outcome"), "\(all)")
        let stream = try AdminClient(host: "127.0.0.1", port: admin).request("GET", "/events?app=shop")
        #expect(stream.status == 200 && stream.body.contains("\"kind\":\"held\""), "\(stream.body.prefix(500))")
        #expect(!events.contains("s3cret-value") && !all.contains("s3cret-value") && !agent.output.contains("s3cret-value"))
    }

    /// A green that dies soon after getting healthy is restarted, counted and reported `crashloop` in status,
    /// metrics, the event log and its commit's note.
    @Test(.timeLimit(.minutes(3)))
    func aCrashLoopIsReported() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let admin = freeLoopbackPort()
        let agent = try Agent(story: story, admin: admin, extra: ["--drift-interval", "60s"])
        defer { agent.kill9() }
        let repo = ["--repo", story.repo.path, "--data-dir", story.data]
        #expect(try TealBinary.run(["wait", "--timeout", "90s"] + repo).status == 0, "\(agent.output)")
        try story.repo.write("apps/shop/crashy.py", """
            import os, runpy, threading
            threading.Timer(1.5, lambda: os._exit(3)).start()
            runpy.run_path("app.py", run_name="__main__")
            """)
        try story.repo.write("apps/shop/environment.yaml", try story.environment() + Self.green("2.0.0", command: #"["python3", "crashy.py"]"#))
        let deploy = try story.repo.commit("Deploy a green that crashes")
        _ = await story.waitForNote(deploy)
        let looping = await HTTP.eventually(timeout: 60, every: 0.5) {
            let json = (try? TealBinary.run(["status", "--json", "--data-dir", story.data]))?.stdout ?? ""
            return json.contains("\"state\" : \"crashloop\"") || json.contains("\"crashloop\" : true")
        }
        #expect(looping, "\(agent.output)")
        let status = try TealBinary.run(["status", "--data-dir", story.data]).stdout
        #expect(status.contains("crashloop"), "\(status)")
        let restarts = status.firstRange(of: #/green .* restarts (\d+)/#).map { Int(status[$0].split(separator: " ").last ?? "") ?? 0 } ?? 0
        #expect(restarts >= 3, "\(status)")
        let metrics = await HTTP.request("http://127.0.0.1:\(admin)/metrics")
        let text = metrics.map { String(decoding: $0.body, as: UTF8.self) } ?? ""
        #expect(text.contains(#"teal_color_crashloop{app="shop",color="green"} 1"#), "\(text)")
        #expect(text.contains("teal_color_restarts_total"))
        #expect(await HTTP.eventually(timeout: 10) { story.note(deploy)?.contains("crashloop: shop green") == true }, "\(story.note(deploy) ?? "")")
        let events = try TealBinary.run(["events", "shop", "--data-dir", story.data]).stdout
        #expect(events.contains("crashloop") && events.contains("restart"), "\(events)")
    }
}
