import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Runs the real `teal` binary as a user would, with the git CLI:
// 1. commit-to-serving latency of a traffic switch and of its `git revert`, by poll (--interval 1s), by
//    webhook (commit, then POST /hooks/git to an agent polling every 60 s), and by webhook through a remote
//    (the repository behind an sshd of the benchmark's own; commit in a separate clone, push, POST /hooks/git);
// 2. the idle agent's CPU and RSS while watching a repository of many apps;
// 3. (part revert-backfill, not in the default set) a `git revert` of a deploy while its backfill runs on
//    TEAL_BENCH_REVERT_ROWS rows (2,000,000): time to rolled back, writer waits throughout.
//
// Usage: AgentBenchmark [TEAL_BIN]   (default $TEAL_BIN, then .build/release/teal)
// TEAL_BENCH_ROUNDS (20), TEAL_BENCH_IDLE_SECONDS (30), TEAL_BENCH_APPS (50),
// TEAL_BENCH_PARTS (poll,webhook,ssh-webhook,idle,idle-manifests), TEAL_BENCH_MANIFESTS (default ./manifests),
// TEAL_BENCH_SPELLING=earlier writes the idle repository's migrations as teal spelled them before pgroll's
// vocabulary (for a same-run baseline against an older teal), TEAL_BENCH_KEEP=1 keeps the work dir (repos, data
// dirs, agent logs).

signal(SIGPIPE, SIG_IGN)
let environment = ProcessInfo.processInfo.environment
let arguments = CommandLine.arguments.dropFirst()
if arguments.contains("-h") || arguments.contains("--help") {
    say("usage: AgentBenchmark [TEAL_BIN]  (env: TEAL_BIN, TEAL_BENCH_ROUNDS, TEAL_BENCH_IDLE_SECONDS, TEAL_BENCH_APPS, TEAL_BENCH_PARTS, TEAL_BENCH_MANIFESTS, TEAL_BENCH_SPELLING, TEAL_BENCH_KEEP)")
    exit(0)
}
let tealArgument = arguments.first ?? environment["TEAL_BIN"] ?? ".build/release/teal"
let teal = URL(fileURLWithPath: tealArgument).standardizedFileURL.path
guard FileManager.default.isExecutableFile(atPath: teal) else {
    FileHandle.standardError.write(Data("no teal binary at \(teal): build it (swift build -c release --product teal) or pass its path\n".utf8))
    exit(2)
}
guard let git = which("git") else {
    FileHandle.standardError.write(Data("the git CLI is needed\n".utf8))
    exit(2)
}
let manifests: String? = {
    let path = environment["TEAL_BENCH_MANIFESTS"] ?? "manifests"
    let url = URL(fileURLWithPath: path).standardizedFileURL
    return FileManager.default.fileExists(atPath: url.appendingPathComponent("apps/shop").path) ? url.path : nil
}()
let parts = Set((environment["TEAL_BENCH_PARTS"] ?? "poll,webhook,ssh-webhook,idle,idle-manifests").split(separator: ",").map(String.init))
let work = NSTemporaryDirectory() + "teal-agent-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
let cleanup = Cleanup()
if environment["TEAL_BENCH_KEEP"] != "1" {
    cleanup.add("work dir") { try? FileManager.default.removeItem(atPath: work) }
}
let settings = Settings(teal: teal, git: git, manifests: manifests, work: work,
                        rounds: max(1, Int(environment["TEAL_BENCH_ROUNDS"] ?? "") ?? 20),
                        idleSeconds: max(1, Int(environment["TEAL_BENCH_IDLE_SECONDS"] ?? "") ?? 30),
                        apps: max(1, Int(environment["TEAL_BENCH_APPS"] ?? "") ?? 50),
                        earlierSpelling: environment["TEAL_BENCH_SPELLING"] == "earlier",
                        cleanup: cleanup)

// SIGINT/SIGTERM: stop the agents and everything they started, then exit.
var signalSources: [DispatchSourceSignal] = []
for number in [SIGINT, SIGTERM] {
    signal(number, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
    source.setEventHandler {
        FileHandle.standardError.write(Data("signal \(number): cleaning up\n".utf8))
        cleanup.run()
        exit(130)
    }
    source.resume()
    signalSources.append(source)
}

func machine() -> String {
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
        .map { $0.split(separator: ":", maxSplits: 1).last!.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    let memory = ((try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? "").split(separator: "\n").first
        .map { $0.replacingOccurrences(of: "MemTotal:", with: "").trimmingCharacters(in: .whitespaces) } ?? "?"
    let load = ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    var uts = utsname()
    uname(&uts)
    let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    return "nproc \(sysconf(Int32(_SC_NPROCESSORS_ONLN))), \(model), \(memory) RAM, Linux \(release), load \(load)"
}

say("teal: \(teal)")
say("machine: \(machine())")
say("work dir: \(work)")
var failures: [String] = []
var latencies: [LatencyResult] = []
var idles: [IdleResult] = []

for trigger in [Trigger.poll, .webhook, .sshWebhook] where parts.contains(trigger.rawValue) {
    say("\n== commit-to-serving latency, \(trigger.rawValue): \(settings.rounds) switches and reverts")
    do {
        let result = try latency(trigger, settings: settings)
        latencies.append(result)
        say("agent: \(result.command)")
        say("switch: " + result.switches.map(ms).joined(separator: " "))
        say("revert: " + result.reverts.map(ms).joined(separator: " "))
        say("outcomes: \(result.outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))"
              + (result.webhookStatuses.isEmpty ? "" : "; webhook answers: \(result.webhookStatuses.map { "\($0.key) x\($0.value)" }.joined(separator: ", "))"))
    } catch {
        failures.append("\(trigger.rawValue): \(error)")
        say("FAILED: \(error)")
    }
}

for withColors in [true, false] where parts.contains(withColors ? "idle" : "idle-manifests") {
    say("\n== idle agent, \(settings.apps) apps, \(withColors ? "one live color each" : "manifests only, no colors")")
    do {
        let result = try idle(withColors: withColors, settings: settings)
        idles.append(result)
        say("agent: \(result.command)")
        say(String(format: "first reconcile done after %.1f s; then CPU %.3f s over %.1f s", result.settleSeconds,
                     result.cpuSeconds, result.window))
        say(String(format: "RSS %.1f MB: anonymous %.1f MB, file-backed %.1f MB (binary and libraries); PSS %.1f MB", Double(result.rssKB) / 1024,
                   Double(result.anonKB) / 1024, Double(result.fileKB) / 1024, Double(result.pssKB) / 1024))
        say("CPU per second of the window (ms): " + result.perSecond.map { String(format: "%.0f", $0 * 1000) }.joined(separator: " "))
        say("CPU by thread (s): " + result.threadCPU.prefix(8).map { String(format: "%@ %.2f", $0.0, $0.1) }.joined(separator: ", "))
        if let router = result.routerCPUSeconds, let rss = result.routerRSSKB {
            say(String(format: "router process: %.3f s CPU (%.2f%% of a core), RSS %.1f MB", router, router / result.window * 100,
                         Double(rss) / 1024))
        }
        if let color = result.colorRSSKB { say(String(format: "a color's RSS: %.1f MB", Double(color) / 1024)) }
    } catch {
        failures.append("idle: \(error)")
        say("FAILED: \(error)")
    }
}

var reverts: [RevertResult] = []
if parts.contains("revert-backfill") {
    let rows = max(1000, Int(environment["TEAL_BENCH_REVERT_ROWS"] ?? "") ?? 2_000_000)
    say("\n== git revert of a deploy while its backfill runs, \(rows) rows")
    do {
        let result = try revertDuringBackfill(rows: rows, settings: settings)
        reverts.append(result)
        say("agent: \(result.command)")
        say("reverted at \(result.doneAtRevert) of \(result.total) rows; deploy \(result.deployOutcome), revert \(result.revertOutcome); green started: \(result.greenStarted)")
    } catch {
        failures.append("revert-backfill: \(error)")
        say("FAILED: \(error)")
    }
}

cleanup.run()

func verdict(_ value: Double, goal: Double) -> String { value < goal ? "met" : "missed" }

say("\n## Results\n")
say("| measure | n | median | p90 | max | goal |")
say("|---|---|---|---|---|---|")
for result in latencies {
    let goal = result.trigger == .webhook ? 0.3 : 1.0
    let how = switch result.trigger {
    case .poll: "poll 1 s"
    case .webhook: "webhook"
    case .sshWebhook: "webhook, remote via sshd"
    }
    for (what, values) in [("switch", result.switches), ("revert", result.reverts)] {
        let s = Summary(values)
        say("| \(what), \(how) | \(s.count) | \(ms(s.median)) | \(ms(s.p90)) | \(ms(s.max)) | median < \(ms(goal)) — \(verdict(s.median, goal: goal)) |")
    }
    let commits = Summary(result.commitSeconds)
    say("| (git \(result.trigger == .sshWebhook ? "commit + push" : "command") alone, \(how)) | \(commits.count) | \(ms(commits.median)) | \(ms(commits.p90)) | \(ms(commits.max)) | |")
}
if !idles.isEmpty {
    say("\n| idle agent, \(settings.apps) apps | window | CPU | % of a core | RSS (anon + files) | PSS | threads | goal |")
    say("|---|---|---|---|---|---|---|---|")
    for result in idles {
        let what = result.withColors ? "one live color each" : "manifests only"
        let rss = Double(result.rssKB) / 1024
        say(String(format: "| %@ | %.0f s | %.3f s | %.2f%% | %.1f MB (%.1f + %.1f) | %.1f MB | %d | < 1%% and < 50 MB — %@ |", what,
                     result.window, result.cpuSeconds, result.percentOfCore, rss, Double(result.anonKB) / 1024,
                     Double(result.fileKB) / 1024, Double(result.pssKB) / 1024, result.threads,
                     result.percentOfCore < 1 && rss < 50 ? "met" : "missed"))
    }
}
for result in reverts {
    let during = Summary(result.writerDuring)
    let before = Summary(result.writerBefore)
    say("\n| git revert mid-backfill, \(result.rows) rows | value | goal |")
    say("|---|---|---|")
    say("| backfill when reverted | \(result.doneAtRevert) of \(result.total) rows | |")
    say("| revert committed -> migration rolled back (blue-only) | \(ms(result.toRolledBack)) | <= 1 s — \(verdict(result.toRolledBack, goal: 1)) |")
    say("| revert committed -> leftovers cleared (NOT NULL back, rows rewritten) | \(ms(result.toCleared)) | |")
    say("| revert committed -> its note | \(ms(result.toNote)) | |")
    say("| writer (5 ms) from the revert to cleared: inserts / p50 / p99 / max | \(during.count) / \(String(format: "%.1f", during.median)) / \(String(format: "%.1f", during.p99)) / \(String(format: "%.1f", during.max)) ms | max <= 50 ms — \(verdict(during.max, goal: 50)) |")
    say("| writer during the deploy's backfill, before the revert: p99 / max | \(String(format: "%.1f", before.p99)) / \(String(format: "%.1f", before.max)) ms | |")
    say("| writer failures; outcomes deploy / revert; green started | \(result.writerFailures); \(result.deployOutcome) / \(result.revertOutcome); \(result.greenStarted) | 0; superseded / applied; false |")
}
if !failures.isEmpty {
    say("\nFailed parts:")
    for failure in failures { say("- \(failure)") }
    exit(1)
}
