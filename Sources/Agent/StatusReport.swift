import Foundation
import Manifest
import Planning
import Reconcile
import State

/// What runs in a data dir, with live probes: the router, each app's colors (instance, health through the app's
/// own health check, uptime, traffic share, requests), traffic and schema state. `teal status` prints it; the
/// agent serves it as `GET /status`.
public struct StatusReport: Codable, Sendable {
    public struct Color: Codable, Sendable {
        public var color: String
        public var release: String
        public var schema: String
        public var commit: String
        public var pid: Int32?
        public var port: Int?
        public var running: Bool
        public var healthy: Bool
        public var uptimeSeconds: Int?
        public var weight: Int
        public var requests: Int?
        public var inFlight: Int?
        /// Restarts by the supervisor since this spec started.
        public var restarts: Int = 0
        /// Restarted too often lately (`ColorSupervisor.crashloopRestarts` in `crashloopWindow`).
        public var crashloop: Bool = false

        /// `healthy`, `unhealthy`, `down` or `crashloop`.
        public var state: String { crashloop ? "crashloop" : !running ? "down" : healthy ? "healthy" : "unhealthy" }
    }

    public struct App: Codable, Sendable {
        public var name: String
        public var listen: String?
        public var traffic: String
        public var weights: [String: Int]
        public var colors: [Color]
        public var schema: String?
        /// Why reconciling is held for this app (`teal suspend`), nil when it is not.
        public var suspended: String?
        /// The backfill of the migration in flight, while the agent reports one.
        public var backfill: BackfillProgress?
    }

    /// The branch tip teal last reconciled, and what serves when it did not apply.
    public struct Head: Codable, Sendable {
        public var commit: String
        public var outcome: String?
        public var errors: [String]
        /// The last commit that applied, which keeps serving when HEAD failed or was refused.
        public var serving: String?
        /// One line: `serving 3f2a1b0c; HEAD 9c8d7e6f failed: …` or `HEAD 9c8d7e6f applied`.
        public var summary: String
    }

    /// A reconciled commit, newest first in `timeline`.
    public struct Reconciled: Codable, Sendable {
        public struct Step: Codable, Sendable {
            public var summary: String
            /// `ok`, `failed`, `superseded`.
            public var status: String
            public var seconds: Double?
            /// The app and color whose log the step's output went to.
            public var app: String?
            public var color: String?
            /// The journaled step whose range of that log `GET /logs/APP/COLOR?step=ID` serves.
            public var journal: Int64?
        }
        public var commit: String
        public var outcome: String
        /// Who made the commit, and its subject, as the note records them.
        public var author: String?
        public var subject: String?
        public var startedAt: Date
        public var seconds: Double?
        public var steps: [Step]
        public var errors: [String]
        /// Lines added after the outcome (a crash loop seen later).
        public var notes: [String]
    }

    public var routerPid: Int32?
    public var apps: [App]
    /// Why reconciling is held for every app, nil when it is not.
    public var suspended: String?
    public var head: Head?
    public var timeline: [Reconciled] = []

    public init(routerPid: Int32?, apps: [App], suspended: String? = nil, head: Head? = nil, timeline: [Reconciled] = []) {
        self.suspended = suspended
        self.head = head
        self.timeline = timeline
        self.routerPid = routerPid
        self.apps = apps
    }

    /// Probes what `store` records. Health is probed with the check each color was started with, at most
    /// `timeout` per probe.
    public static func gather(store: StateStore, drivers: ReconcileDrivers, metrics: (any ReconcileMetrics)? = nil,
                              timeout: Duration = .seconds(1)) async throws -> StatusReport {
        let driverHealth = await drivers.traffic.health()
        let routes = driverHealth.isAnswering ? ((try? await drivers.traffic.routes()) ?? [:]) : [:]
        let counters = driverHealth.isAnswering ? ((try? await drivers.traffic.counters()) ?? [:]) : [:]
        let records = try store.colors()
        let schemas = (try? store.schemas()) ?? [:]

        var apps: [App] = []
        for name in Set(records.map(\.app)).union(routes.keys).sorted() {
            let route = routes[name]?.effective ?? .none
            var colors: [Color] = []
            for record in records where record.app == name {
                let inspection = record.handle.map(drivers.runtime.inspect) ?? ColorInspection(alive: false)
                var health = record.health ?? HealthCheck()
                health.timeout = min(health.timeout, timeout)
                let healthy = inspection.alive ? await drivers.runtime.probe(record, health: health) : false
                metrics?.colorHealth(app: name, color: record.color, healthy: healthy)
                let counter = counters[name]?[record.color]
                colors.append(Color(
                    color: record.color.rawValue, release: record.spec.release, schema: record.spec.schema,
                    commit: String(record.specCommit.prefix(8)), pid: inspection.pid, port: record.port, running: inspection.alive,
                    healthy: healthy, uptimeSeconds: inspection.uptime.map { Int($0.components.seconds) },
                    weight: route.weight(of: record.color), requests: counter?.requests, inFlight: counter?.inFlight))
            }
            let schema = schemas[name].map { s in
                ([s.completed.last.map { "\($0.name) completed" }, s.inFlight.map { "\($0.name) in flight" }]
                    .compactMap { $0 }).joined(separator: ", ")
            }
            apps.append(App(name: name, listen: routes[name]?.listen.description, traffic: route.description,
                            weights: Dictionary(uniqueKeysWithValues: route.weights.map { ($0.key.rawValue, $0.value) }),
                            colors: colors, schema: schema))
        }
        var routerPid: Int32?
        if case .answering(let pid) = driverHealth { routerPid = pid }
        var report = StatusReport(routerPid: routerPid, apps: apps)
        try report.addOperations(store: store, backfills: (metrics as? AgentMetrics)?.backfillProgress() ?? [:])
        return report
    }

    /// Suspensions, restarts and crash loops, HEAD and what serves, and the timeline of recent commits.
    mutating func addOperations(store: StateStore, backfills: [String: BackfillProgress]) throws {
        let suspensions = try store.suspensions()
        func describe(_ s: Suspension) -> String {
            "suspended by \(s.by) at \(s.at.formatted(.iso8601))\(s.repairDrift ? " (drift is repaired)" : "")"
        }
        suspended = suspensions.all.first { $0.app == nil }.map(describe)
        let window = Date().addingTimeInterval(-ColorSupervisor.crashloopWindow)
        let records = try store.colors()
        for index in apps.indices {
            let name = apps[index].name
            apps[index].suspended = suspensions.holding(name).map(describe)
            apps[index].backfill = backfills[name]
            for c in apps[index].colors.indices {
                let color = apps[index].colors[c]
                guard let record = records.first(where: { $0.app == name && $0.color.rawValue == color.color }) else { continue }
                apps[index].colors[c].restarts = try store.restarts(app: name, color: color.color, commit: record.specCommit)
                apps[index].colors[c].crashloop = try store.restarts(app: name, color: color.color, commit: record.specCommit, since: window)
                    >= ColorSupervisor.crashloopRestarts
            }
        }
        let outcomes = try store.recentOutcomes(limit: 20)
        timeline = outcomes.map { Self.reconciled(commit: $0.commit, outcome: $0.outcome.rawValue, note: $0.note, startedAt: $0.startedAt) }
        for index in timeline.indices { try Self.linkStepLogs(&timeline[index], store: store) }
        if let last = try store.meta("last_reconciled_commit") {
            let entry = timeline.first { $0.commit == last }
            let serving = try store.meta("last_applied_commit")
            let outcome = entry?.outcome
            var summary = "HEAD \(last.prefix(8)) \(outcome ?? "not reconciled")"
            if let outcome, outcome == "failed" || outcome == "refused" {
                let why = entry?.errors.first.map { ": \($0)" } ?? ""
                summary = (serving.map { "serving \($0.prefix(8)); " } ?? "nothing applied yet; ") + "HEAD \(last.prefix(8)) \(outcome)\(why)"
            }
            head = Head(commit: last, outcome: outcome, errors: entry?.errors ?? [], serving: serving, summary: summary)
        }
    }

    /// Links the note's steps to the journaled steps of the commit's last run (the plan journaled last, whose run
    /// wrote the note), where they recorded the range of a color's log they wrote.
    static func linkStepLogs(_ entry: inout Reconciled, store: StateStore) throws {
        guard !entry.steps.isEmpty else { return }
        let journal = try store.journalEntries(commit: entry.commit)
        guard let start = journal.lastIndex(where: { $0.position == 0 }) else { return }
        let run = journal[start...]
        for i in entry.steps.indices {
            guard let step = run.first(where: { $0.position == i }), step.step.step.summary == entry.steps[i].summary,
                  let range = step.log else { continue }
            entry.steps[i].journal = step.id
            entry.steps[i].app = range.app
            entry.steps[i].color = range.color
        }
    }

    /// A timeline entry from the note text (`AuditRecord.note`).
    static func reconciled(commit: String, outcome: String, note: String, startedAt: Date) -> Reconciled {
        var steps: [Reconciled.Step] = []
        var errors: [String] = []
        var notes: [String] = []
        var seconds: Double?
        var author: String?, subject: String?
        for line in note.split(separator: "\n").map(String.init) {
            if line.hasPrefix("author: ") { author = String(line.dropFirst(8)); continue }
            if line.hasPrefix("subject: ") { subject = String(line.dropFirst(9)); continue }
            if line.hasPrefix("step "), let colon = line.firstIndex(of: ":"), let open = line.lastIndex(of: "["), line.hasSuffix("]") {
                let summary = line[line.index(colon, offsetBy: 2)..<open].trimmingCharacters(in: .whitespaces)
                let inside = line[line.index(after: open)..<line.index(before: line.endIndex)].split(separator: ",")
                let status = inside.first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                let time = inside.dropFirst().first.flatMap { Double($0.trimmingCharacters(in: .whitespaces).dropLast()) }
                let words = summary.split(separator: " ")
                let app = words.first.map { String($0.dropLast()) }
                // Only steps that start, wait for or stop a color wrote to its log.
                let acts = words.dropFirst().first.map { ["start", "stop", "wait", "drain"].contains(String($0)) } ?? false
                let color = acts ? words.dropFirst().first { ["blue", "green"].contains($0) }.map(String.init) : nil
                steps.append(.init(summary: summary, status: status, seconds: time, app: app, color: color))
            } else if line.hasPrefix("error: ") {
                errors.append(String(line.dropFirst(7)))
            } else if line.hasPrefix("  "), !errors.isEmpty {
                errors[errors.count - 1] += "\n" + line.dropFirst(2)
            } else if line.hasPrefix("finished: "), let open = line.lastIndex(of: "("), line.hasSuffix("s)") {
                seconds = Double(line[line.index(after: open)..<line.index(line.endIndex, offsetBy: -2)])
            } else if line.hasPrefix("crashloop: ") {
                notes.append(line)
            }
        }
        return Reconciled(commit: commit, outcome: outcome, author: author, subject: subject, startedAt: startedAt, seconds: seconds,
                          steps: steps, errors: errors, notes: notes)
    }

    /// The JSON `teal status --json` prints and `GET /status` serves.
    public func json() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return Array(try encoder.encode(self))
    }
}
