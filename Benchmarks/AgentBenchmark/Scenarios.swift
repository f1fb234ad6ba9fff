import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct Settings {
    var teal: String
    var git: String
    var manifests: String?
    var work: String
    var rounds: Int
    var idleSeconds: Int
    var apps: Int
    /// The idle repository's migrations in teal's earlier spelling (`table:`, `primary_key:`), which teal still
    /// reads, so that a teal from before pgroll's vocabulary can be measured with the same benchmark.
    var earlierSpelling: Bool
    var cleanup: Cleanup
}

// MARK: - Commit-to-serving latency

enum Trigger: String {
    case poll
    case webhook
    /// The webhook, with the repository behind a local sshd: the agent follows `ssh://...` through its mirror
    /// (and pushes its notes back), the user commits in a clone of their own and pushes.
    case sshWebhook = "ssh-webhook"
}

struct LatencyResult {
    var trigger: Trigger
    var command: String
    var switches: [Double] = []
    var reverts: [Double] = []
    /// Outcomes of the measured commits' notes, counted.
    var outcomes: [String: Int] = [:]
    /// Time from commit start to the git command's return (with the push, through a remote), to separate git's share.
    var commitSeconds: [Double] = []
    var webhookStatuses: [Int: Int] = [:]
}

/// The example shop with blue and green both running, blue live on a free port; then `rounds` times:
/// commit `live: green` and time until GET / is served by green, `git revert` it and time until blue serves.
/// With `.sshWebhook` the repository is a bare one behind a local sshd, the agent follows its ssh:// URL, and each
/// commit is made in a separate clone and pushed before the webhook is sent; the time runs from the commit to the
/// new color serving, push included.
func latency(_ trigger: Trigger, settings s: Settings) throws -> LatencyResult {
    let dir = "\(s.work)/latency-\(trigger.rawValue)"
    let repo = GitRepo(path: "\(dir)/repo", git: s.git)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var initArguments = ["init", repo.path]
    if let manifests = s.manifests { initArguments += ["--from", manifests] }
    try run(s.teal, initArguments)
    try repo.configure()
    // teal init commits through libgit2; give the git CLI an index that matches HEAD.
    try repo.run(["reset", "-q"])

    let listen = try freePort()
    let adminPort = try freePort()
    // The user's repository: the scratch one itself, or a clone of the remote that the agent reads through sshd.
    var user = repo
    var agentRepository = repo.path
    var extra = trigger == .poll ? ["--interval", "1s"] : ["--interval", "60s", "--drift-interval", "60s"]
    let mark: Int
    if trigger == .sshWebhook {
        let bare = "\(dir)/remote.git"
        try run(s.git, ["clone", "-q", "--bare", repo.path, bare])
        let sshd = try LocalSSHD(dir: "\(dir)/sshd")
        mark = s.cleanup.add("sshd") { sshd.stop() }
        user = GitRepo(path: "\(dir)/clone", git: s.git)
        try run(s.git, ["clone", "-q", bare, user.path])
        try user.configure()
        agentRepository = sshd.url(bare)
        extra += ["--ssh-key", sshd.clientKey, "--known-hosts", sshd.knownHosts, "--push-notes"]
    } else {
        mark = s.cleanup.add("nothing") {}
    }
    defer { s.cleanup.run(from: mark) }
    let shop = "\(user.path)/apps/shop"
    var environment = try String(contentsOfFile: "\(shop)/environment.yaml", encoding: .utf8)
    guard let blue = environment.range(of: "  blue:\n") else { throw BenchmarkError("the example's environment.yaml has no blue color") }
    let blueSpec = String(environment[blue.lowerBound...])
    let greenSpec = blueSpec.replacingOccurrences(of: "  blue:\n", with: "  green:\n")
        .replacingOccurrences(of: "release: \"1.0.0\"", with: "release: \"1.0.1\"")
    if !environment.hasSuffix("\n") { environment += "\n" }
    environment += greenSpec.hasSuffix("\n") ? greenSpec : greenSpec + "\n"
    try environment.write(toFile: "\(shop)/environment.yaml", atomically: true, encoding: .utf8)
    let traffic = { (live: String) in "listen: 127.0.0.1:\(listen)\nlive: \(live)\n" }
    try traffic("blue").write(toFile: "\(shop)/traffic.yaml", atomically: true, encoding: .utf8)
    try user.run(["commit", "-q", "-a", "-m", "shop: green on 1.0.1 beside blue, listen on \(listen)"])
    if trigger == .sshWebhook { try user.run(["push", "-q", "origin", "HEAD:main"]) }
    /// The note on the user's HEAD; through a remote, after fetching the notes the agent pushed.
    let note = { () -> String? in
        if trigger == .sshWebhook { _ = try? user.run(["fetch", "-q", "origin", "+refs/notes/teal:refs/notes/teal"], check: false) }
        return user.tealNote()
    }

    let agent = AgentProcess(teal: s.teal, repo: agentRepository, dataDir: "\(dir)/data", adminPort: adminPort, logPath: "\(dir)/agent.log")
    s.cleanup.add("agent \(trigger.rawValue)") { tearDown(agent: agent, teal: s.teal) }
    var result = LatencyResult(trigger: trigger, command: "teal " + agent.arguments(extra: extra).joined(separator: " "))
    try agent.start(extra: extra)
    if trigger != .poll { _ = agent.webhook() }

    // Settled: blue serves, green runs healthy, the commit has its note.
    _ = try waitFor("blue serving and green healthy (log: \(agent.logPath))", timeout: 180, every: 0.2) { () -> Bool? in
        guard servingColor(port: listen) == "blue", let note = note() else { return nil }
        guard outcome(ofNote: note) == "applied" else { throw BenchmarkError("setup commit: \(note)") }
        let apps = agent.status()?["apps"] as? [[String: Any]] ?? []
        let colors = apps.first { $0["name"] as? String == "shop" }?["colors"] as? [[String: Any]] ?? []
        let healthy = colors.filter { $0["healthy"] as? Bool == true }.count
        return healthy == 2 ? true : nil
    }

    for round in 1...s.rounds {
        for step in ["switch", "revert"] {
            // A random phase against the poll interval, as a user's commit would have.
            pause(Double.random(in: 0.2...1.2))
            let target = step == "switch" ? "green" : "blue"
            if step == "switch" {
                try traffic("green").write(toFile: "\(shop)/traffic.yaml", atomically: true, encoding: .utf8)
            }
            let arguments = step == "switch"
                ? ["commit", "-q", "-a", "-m", "shop: live green (round \(round))"]
                : ["revert", "--no-edit", "HEAD"]
            let started = clock.now
            try user.run(arguments)
            if trigger == .sshWebhook { try user.run(["push", "-q", "origin", "HEAD:main"]) }
            result.commitSeconds.append(started.duration(to: clock.now).seconds)
            if trigger != .poll {
                let status = agent.webhook() ?? 0
                result.webhookStatuses[status, default: 0] += 1
            }
            var served: Double?
            let deadline = started + .seconds(30)
            while clock.now < deadline {
                let tick = clock.now
                if servingColor(port: listen, timeout: 1) == target {
                    served = started.duration(to: clock.now).seconds
                    break
                }
                let next = tick + .milliseconds(5)
                if clock.now < next { pause(clock.now.duration(to: next).seconds) }
            }
            guard let served else {
                throw BenchmarkError("round \(round) \(step): \(target) not serving within 30 s; agent log:\n\(agent.tail())")
            }
            if step == "switch" { result.switches.append(served) } else { result.reverts.append(served) }
            // Let the pass finish (its note written) before the next commit, so rounds do not overlap.
            let written = try waitFor("the note on round \(round) \(step)", timeout: 30, every: 0.02) { note() }
            result.outcomes[outcome(ofNote: written), default: 0] += 1
            guard servingColor(port: listen) == target else {
                throw BenchmarkError("round \(round) \(step): \(target) served, then not any more")
            }
        }
    }
    return result
}

// MARK: - Idle agent

struct IdleResult {
    var withColors: Bool
    var apps: Int
    var command: String
    var settleSeconds: Double
    var window: Double
    var cpuSeconds: Double
    var rssKB: Int
    var peakRSSKB: Int
    var anonKB: Int
    var fileKB: Int
    var pssKB: Int
    var threads: Int
    /// CPU seconds per one-second slice of the window, to show the periodic passes.
    var perSecond: [Double]
    var threadCPU: [(String, Double)]
    var routerCPUSeconds: Double?
    var routerRSSKB: Int?
    var colorRSSKB: Int?

    var percentOfCore: Double { cpuSeconds / window * 100 }
}

/// The smallest color that passes a health check: answers 200 with its color to any GET.
let idleServer = """
    import os
    from http.server import BaseHTTPRequestHandler, HTTPServer

    BODY = ('{"teal_color": "%s"}' % os.environ.get("TEAL_COLOR", "")).encode()


    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args):
            pass


    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()

    """

/// A repository of `apps` apps, each with a migration and an environment; with `withColors`, each app
/// runs one color (a tiny Python server) live behind its own listen port. The agent is started with the
/// default interval and, after it has reconciled and a few more polls and drift passes went by, its CPU
/// time and RSS are sampled.
func idle(withColors: Bool, settings s: Settings) throws -> IdleResult {
    let dir = "\(s.work)/idle-\(withColors ? "colors" : "manifests")"
    let repo = GitRepo(path: "\(dir)/repo", git: s.git)
    let fm = FileManager.default
    try fm.createDirectory(atPath: repo.path, withIntermediateDirectories: true)
    try repo.run(["init", "-q", "-b", "main"])
    try repo.configure()
    var listens: [Int] = []
    for index in 1...s.apps {
        let name = String(format: "app%02d", index)
        let folder = "\(repo.path)/apps/\(name)"
        try fm.createDirectory(atPath: "\(folder)/schema", withIntermediateDirectories: true)
        try """
            operations:
              - create_table:
                  \(s.earlierSpelling ? "table" : "name"): items
                  columns:
                    - {name: id, type: integer, \(s.earlierSpelling ? "primary_key" : "pk"): true}
                    - {name: label, type: text, nullable: true}

            """.write(toFile: "\(folder)/schema/0001_create_items.yaml", atomically: true, encoding: .utf8)
        var environment = """
            database: sqlite:\(name).db
            health:
              path: /healthz
              interval: 100ms
              timeout: 1s
              healthy_after: 1
              start_timeout: 30s
            drain: 1s

            """
        if withColors {
            environment += """
                colors:
                  blue:
                    release: "1.0.0"
                    command: ["python3", "serve.py"]
                    schema: 0001_create_items

                """
            try idleServer.write(toFile: "\(folder)/serve.py", atomically: true, encoding: .utf8)
            let listen = try freePort()
            listens.append(listen)
            try "listen: 127.0.0.1:\(listen)\nlive: blue\n".write(toFile: "\(folder)/traffic.yaml", atomically: true, encoding: .utf8)
        } else {
            environment += "colors: {}\n"
        }
        try environment.write(toFile: "\(folder)/environment.yaml", atomically: true, encoding: .utf8)
    }
    try repo.run(["add", "apps"])
    try repo.run(["commit", "-q", "-m", "\(s.apps) apps"])
    try run(s.teal, ["validate", "--repo", repo.path])

    let agent = AgentProcess(teal: s.teal, repo: repo.path, dataDir: "\(dir)/data", adminPort: try freePort(), logPath: "\(dir)/agent.log")
    let mark = s.cleanup.add("agent idle") { tearDown(agent: agent, teal: s.teal) }
    defer { s.cleanup.run(from: mark) }
    let started = clock.now
    try agent.start(extra: [])
    _ = try waitFor("the first pass over \(s.apps) apps (log: \(agent.logPath))", timeout: 600, every: 0.5) { () -> Bool? in
        guard let note = repo.tealNote() else { return nil }
        guard outcome(ofNote: note) == "applied" else { throw BenchmarkError("the \(s.apps)-app commit: \(note)") }
        return true
    }
    for listen in listens {
        _ = try waitFor("blue serving on \(listen)", timeout: 60) { servingColor(port: listen) == "blue" ? true : nil }
    }
    let settle = started.duration(to: clock.now).seconds
    // Settled: several polls, supervision rounds and drift passes after the first reconcile.
    pause(12)

    let pid = agent.pid
    let routerPid = (agent.status()?["routerPid"] as? Int).map(Int32.init)
    guard let first = procSample(pid: pid) else { throw BenchmarkError("cannot read /proc/\(pid)") }
    let routerFirst = routerPid.flatMap(procSample(pid:))
    let threadsFirst = threadCPU(pid: pid)
    let windowStart = clock.now
    var perSecond: [Double] = []
    var previous = first.cpu
    for second in 1...s.idleSeconds {
        let due = windowStart + .seconds(second)
        if clock.now < due { pause(clock.now.duration(to: due).seconds) }
        guard let sample = procSample(pid: pid) else { throw BenchmarkError("the agent exited; log:\n\(agent.tail())") }
        perSecond.append(sample.cpu - previous)
        previous = sample.cpu
    }
    let window = windowStart.duration(to: clock.now).seconds
    guard let last = procSample(pid: pid) else { throw BenchmarkError("the agent exited; log:\n\(agent.tail())") }
    let threadsLast = threadCPU(pid: pid)
    var threads: [(String, Double)] = []
    for (name, cpu) in threadsLast {
        let delta = cpu - (threadsFirst[name] ?? 0)
        if delta > 0 { threads.append((name, delta)) }
    }
    threads.sort { $0.1 > $1.1 }
    let routerLast = routerPid.flatMap(procSample(pid:))

    var colorRSS: Int?
    if withColors, let apps = agent.status()?["apps"] as? [[String: Any]] {
        let pids = apps.compactMap { ($0["colors"] as? [[String: Any]])?.first?["pid"] as? Int }
        let rss = pids.compactMap { procSample(pid: Int32($0))?.rssKB }
        if !rss.isEmpty { colorRSS = rss.reduce(0, +) / rss.count }
    }
    let command = "teal " + agent.arguments(extra: []).joined(separator: " ")
    return IdleResult(withColors: withColors, apps: s.apps, command: command, settleSeconds: settle, window: window,
                      cpuSeconds: last.cpu - first.cpu, rssKB: last.rssKB, peakRSSKB: last.peakRSSKB,
                      anonKB: last.anonKB, fileKB: last.fileKB, pssKB: last.pssKB, threads: last.threads,
                      perSecond: perSecond, threadCPU: threads,
                      routerCPUSeconds: routerFirst.flatMap { f in routerLast.map { $0.cpu - f.cpu } },
                      routerRSSKB: routerLast?.rssKB, colorRSSKB: colorRSS)
}
