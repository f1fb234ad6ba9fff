import Manifest

/// Desired × observed → ordered steps. Pure: no I/O, no clock.
///
/// Each app is planned on its own. The planner first derives the target schema state from the
/// declared colors (PRODUCT.md, "Semantics of a migration"), classifies every color as kept,
/// started, restarted or stopped, then orders the resulting steps by their dependencies — the
/// five invariants expressed as edges — picking, among steps that are ready, the one a person
/// would expect first. A cycle means no safe order exists: the app is refused with the reason.
public enum Planner {
    public static func plan(desired: DesiredState, observed: ObservedState) -> Plan {
        var plan = Plan()
        for name in Set(desired.apps.keys).union(observed.apps.keys).sorted() {
            switch planApp(name, desired: desired.apps[name], observed: observed.apps[name] ?? ObservedApp()) {
            case .success(let steps): plan.steps += steps
            case .failure(let refusal): plan.refusals.append(refusal)
            }
        }
        return plan
    }

    /// The steps for one app, or why it cannot be reconciled safely.
    public static func planApp(_ name: String, desired: AppManifest?, observed: ObservedApp) -> Result<[PlannedStep], Refusal> {
        var graph = StepGraph(app: name)
        if let holder = observed.listenHeldBy, let listen = desired?.traffic?.listen {
            return .failure(Refusal(app: name, message: "apps/\(name)/traffic.yaml: listen \(listen) is in use by \(holder)",
                                    hint: "stop that process or choose another listen address; nothing was migrated or started"))
        }
        do {
            try AppPlanning(app: name, desired: desired, observed: observed).build(into: &graph)
            return .success(try graph.ordered())
        } catch let refusal as Refusal {
            return .failure(refusal)
        } catch {
            return .failure(Refusal(app: name, message: "\(error)", hint: "report this as a bug"))
        }
    }
}

/// The facts of one app's plan, from which the step graph is built.
struct AppPlanning {
    let app: String
    let desired: AppManifest?
    let observed: ObservedApp

    var migrations: [Migration] { desired?.migrations ?? [] }
    var desiredColors: [ColorName: ColorSpec] { desired?.environment.colors ?? [:] }

    enum ColorChange { case keep, start, restart, stop }

    func refuse(_ message: String, hint: String) -> Refusal { Refusal(app: app, message: message, hint: hint) }

    func build(into graph: inout StepGraph) throws {
        let schema = try schemaTargets()
        let r0 = observed.route
        let r1 = desired?.route ?? .none

        // Colors.
        var changes: [ColorName: ColorChange] = [:]
        for color in ColorName.allCases {
            let d = desiredColors[color]
            let o = observed.colors[color]
            switch (d, o) {
            case (nil, nil): continue
            case (nil, .some): changes[color] = .stop
            case (.some, nil): changes[color] = .start
            case (.some(let d), .some(let o)):
                if !o.running { changes[color] = .start } else { changes[color] = o.spec == d ? .keep : .restart }
            }
        }
        for (color, change) in changes where change == .restart && r0.weight(of: color) > 0 && r1.weight(of: color) > 0 {
            let other = color.other
            throw refuse("\(color) must restart (\(specChange(color))) while it receives traffic, and traffic stays on it",
                         hint: "deploy the new release as \(other) first, switch traffic to \(other) (live: \(other)), "
                            + "then change \(color) in a later commit")
        }

        // Nodes.
        for (color, change) in changes.sorted(by: { $0.key < $1.key }) {
            switch change {
            case .keep:
                if r1.weight(of: color) > 0, observed.colors[color]?.healthy == false {
                    graph.add(.await(color), PlannedStep(.awaitHealthy(app: app, color: color),
                                                         reason: "\(color) is running but not healthy; it gets traffic only once healthy"))
                }
            case .start, .restart:
                let spec = desiredColors[color]!
                let commit = desired?.specCommits[color] ?? ""
                if change == .restart {
                    graph.add(.stop(color), PlannedStep(.stopColor(app: app, color: color, drain: r0.weight(of: color) > 0),
                                                        reason: "\(color)'s spec changed (\(specChange(color))); the old process goes first"))
                }
                let why: String
                if change == .restart {
                    why = "\(color) is declared with release \(spec.release) on schema \(spec.schema)"
                } else if observed.colors[color] != nil {
                    why = "\(color) is declared but its process is not running"
                } else {
                    why = "\(color) is declared with release \(spec.release) and is not running"
                }
                graph.add(.start(color), PlannedStep(.startColor(app: app, color: color, spec: spec, commit: commit), reason: why))
            case .stop:
                graph.add(.stop(color), PlannedStep(.stopColor(app: app, color: color, drain: r0.weight(of: color) > 0),
                                                    reason: desired == nil ? "app \(app) was removed from apps/"
                                                        : "\(color) is no longer declared in environment.yaml"))
            }
        }
        let listenMoves = desired?.traffic?.listen != nil && observed.listen != nil && desired?.traffic?.listen != observed.listen
        let frontChanges = desired?.traffic != nil && observed.listen != nil
            && (desired?.traffic?.tls != observed.tls || desired?.traffic?.trustedForwarders != observed.trustedForwarders)
        let routeNeeded = r1 != r0 || listenMoves || frontChanges
            || r1.colors.contains { changes[$0] == .start || changes[$0] == .restart }
        if routeNeeded {
            let reason = r1 != r0 ? "traffic.yaml asks for \(r1.description) (now \(r0.description))"
                : listenMoves ? "traffic.yaml moves the listen address to \(desired!.traffic!.listen) (now \(observed.listen!))"
                : frontChanges ? (desired?.traffic?.tls != observed.tls
                    ? (desired?.traffic?.tls == nil ? "traffic.yaml serves \(desired!.traffic!.listen) without TLS (now with)"
                        : "traffic.yaml serves \(desired!.traffic!.listen) with TLS from \(desired!.traffic!.tls!.certificate)")
                    : "traffic.yaml changes the trusted forwarders of \(desired!.traffic!.listen)")
                : "\(r1.description) again: the color's process was replaced"
            graph.add(.route, PlannedStep(.route(app: app, route: r1), reason: reason))
        }
        if let rollback = schema.rollback {
            graph.add(.rollback, PlannedStep(.rollbackMigration(app: app, migration: rollback.name), reason: schema.rollbackReason))
        }
        if let reopen = schema.reopen {
            graph.add(.reopen, PlannedStep(.reopenMigration(app: app, migration: migrations[reopen].name), reason: schema.reopenReason))
            graph.edge(.rollback, before: .reopen)
        }
        for i in schema.starts {
            let m = migrations[i]
            let users = desiredColors.filter { entry in (index(of: entry.value.schema) ?? -1) >= i }.keys.sorted()
            graph.add(.startMigration(i), PlannedStep(.startMigration(app: app, migration: m),
                reason: "\(users.map(\.rawValue).joined(separator: " and ")) need\(users.count == 1 ? "s" : "") \(m.name); "
                    + "the previous shape stays available"))
        }
        for index in schema.completes {
            let name = migrations[index].name
            graph.add(.completeMigration(index), PlannedStep(.completeMigration(app: app, migration: name),
                reason: index < observed.schema.completed.count
                    ? "the reopen of \(name) was cut off and no declared color needs the shape before it any more: "
                        + "complete's steps run again, keeping every row written meanwhile"
                    : "every declared color needs \(name) or later; the old shape can go"))
        }

        // Edges: the invariants.
        for (color, change) in changes {
            if change == .restart { graph.edge(.stop(color), before: .start(color)) }
            if change == .start || change == .restart, let k = index(of: desiredColors[color]!.schema) {
                for i in schema.starts where i <= k { graph.edge(.startMigration(i), before: .start(color)) }  // invariant 3
                if schema.rollbackIsOrphan, schema.rollback != nil { graph.edge(.rollback, before: .start(color)) }
                if let reopen = schema.reopen, k < reopen { graph.edge(.reopen, before: .start(color)) }  // invariant 3: the old shape is back first
                if r1.weight(of: color) > 0 { graph.edge(.start(color), before: .route) }  // invariant 1
            }
            if change == .keep, graph.has(.await(color)) { graph.edge(.await(color), before: .route) }
            if change == .stop || change == .restart, r0.weight(of: color) > 0 {
                graph.edge(.route, before: .stop(color))  // invariant 2
            }
        }
        let runningOld = observed.colors.filter { $0.value.running }
        for index in schema.completes {
            if schema.starts.contains(index) { graph.edge(.startMigration(index), before: .completeMigration(index)) }
            for (color, o) in runningOld where (observedIndex(of: o.spec.schema) ?? -1) < index {
                guard graph.has(.stop(color)) else {
                    throw refuse("\(color) runs \(o.spec.schema) and must stop before \(migrations[index].name) completes, but it stays declared",
                                 hint: "declare \(color) on \(migrations[index].name) or later, or remove it")
                }
                graph.edge(.stop(color), before: .completeMigration(index))  // invariant 5
            }
        }
        for index in schema.starts {
            if schema.completes.contains(index - 1) { graph.edge(.completeMigration(index - 1), before: .startMigration(index)) }
            if schema.rollback != nil { graph.edge(.rollback, before: .startMigration(index)) }
        }
        if let rollback = schema.rollback {
            for (color, o) in runningOld where o.spec.schema == rollback.name || observedIndex(of: o.spec.schema) == nil {
                guard graph.has(.stop(color)) else {
                    throw refuse("\(rollback.name) must roll back but \(color) still runs on it", hint: "declare \(color) on an earlier migration")
                }
                graph.edge(.stop(color), before: .rollback)  // invariant 4
            }
        }
    }

    func index(of migration: String) -> Int? { migrations.firstIndex { $0.name == migration } }

    /// Index of a running color's migration; the in-flight one counts even if its file is gone.
    func observedIndex(of migration: String) -> Int? {
        if let i = observed.schema.completed.firstIndex(where: { $0.name == migration }) { return i }
        if observed.schema.inFlight?.name == migration { return observed.schema.completed.count }
        return index(of: migration)
    }

    func specChange(_ color: ColorName) -> String {
        guard let o = observed.colors[color]?.spec, let d = desiredColors[color] else { return "spec changed" }
        var parts: [String] = []
        if o.release != d.release { parts.append("release \(o.release) → \(d.release)") }
        if o.schema != d.schema { parts.append("schema \(o.schema) → \(d.schema)") }
        if o.command != d.command { parts.append("command changed") }
        if o.env != d.env || o.envFiles != d.envFiles { parts.append("environment changed") }
        return parts.isEmpty ? "spec changed" : parts.joined(separator: ", ")
    }

    struct SchemaTargets {
        var starts: [Int] = []
        var completes: [Int] = []
        var rollback: AppliedMigration?
        var rollbackIsOrphan = false
        var rollbackReason = ""
        /// The last completed migration, to reopen (its complete undone).
        var reopen: Int?
        var reopenReason = ""
    }

    /// Which migrations to start, complete and roll back; refuses impossible histories.
    func schemaTargets() throws -> SchemaTargets {
        var t = SchemaTargets()
        guard desired != nil else { return t }  // a removed app keeps its database as it is
        let completed = observed.schema.completed
        let c = completed.count
        for (i, applied) in completed.enumerated() {
            guard i < migrations.count else {
                throw refuse("\(applied.name) was completed on the database but its file is not in schema/",
                             hint: "a completed migration cannot be undone; restore \(applied.name).yaml")
            }
            guard migrations[i].name == applied.name else {
                throw refuse("the database completed \(applied.name) where schema/ now has \(migrations[i].name)",
                             hint: "migrations form one linear history; restore \(applied.name).yaml and add new migrations after it")
            }
            guard migrations[i].checksum == applied.checksum else {
                throw refuse("\(applied.name).yaml changed after it was applied",
                             hint: "never edit an applied migration; revert the edit and add a new migration instead")
            }
        }
        var startedInFlight: Int?
        if let f = observed.schema.inFlight {
            if c < migrations.count, migrations[c].name == f.name {
                guard migrations[c].checksum == f.checksum else {
                    throw refuse("\(f.name).yaml changed after it was started",
                                 hint: "revert the edit; to change it, first roll it back (remove the colors that need it), then edit")
                }
                startedInFlight = c
            } else {
                t.rollback = f
                t.rollbackIsOrphan = true
                t.rollbackReason = "\(f.name) is in flight but its file is no longer in schema/; it rolls back from the definition stored in the database"
            }
        }
        // A reopen cut off half-way is finished when the old shape is wanted, and undone (completed again) when not.
        let reopening = c > 0 && observed.schema.lastCompletedReopening
        let needs = desiredColors.sorted { $0.key < $1.key }.compactMap { color, spec in index(of: spec.schema).map { (color, $0) } }
        guard let lo = needs.map(\.1).min(), let hi = needs.map(\.1).max() else {
            if let s = startedInFlight {
                t.rollback = observed.schema.inFlight
                t.rollbackReason = "no declared color needs \(migrations[s].name) any more"
            }
            if reopening { t.completes = [c - 1] }
            return t
        }
        if hi - lo > 1 {
            let describe = needs.map { "\($0.0) needs \(migrations[$0.1].name)" }.joined(separator: ", ")
            throw refuse("\(describe): that would put \(hi - lo) migrations in flight on one database, and at most one may be",
                         hint: "move the colors one migration at a time: first declare every color on \(migrations[lo + 1].name) or \(migrations[lo].name), let it complete, then go on")
        }
        if c > 0, lo < c - 1 {
            let (color, k) = needs.first { $0.1 == lo }!
            let last = migrations[c - 1].name
            guard lo == c - 2, observed.schema.lastCompletedReopenable else {
                throw refuse("\(color) needs \(migrations[k].name), but \(last) was already completed and the older shape is gone",
                             hint: (lo == c - 2 ? "\(last)'s complete cannot be undone: "
                                        + (observed.schema.lastCompletedFinalBecause ?? "this database dropped what the old shape had") + "; " : "")
                                + "a completed migration cannot be rolled back: declare \(color) on \(last) or later, "
                                + "or write a new migration that brings back what \(color) needs")
            }
            // The complete is undone: the old shape comes back, computed from today's rows, and the migration is in flight again.
            t.reopen = c - 1
            t.reopenReason = reopening
                ? "\(color) needs \(migrations[k].name) again and the reopen of \(last) was cut off: it is finished, both shapes run again"
                : "\(color) needs \(migrations[k].name) again and \(last)'s complete can still be undone "
                    + "(what it put aside is kept): both shapes run again"
        }
        if let s = startedInFlight, s > hi {
            t.rollback = observed.schema.inFlight
            t.rollbackReason = "no declared color needs \(migrations[s].name) any more"
        }
        // A start cut short during its backfill is started again: the engine resumes it. A reopened migration is started.
        let completedCount = t.reopen ?? (reopening ? c - 1 : c)
        let firstUnstarted = t.reopen.map { $0 + 1 } ?? startedInFlight.map { observed.schema.inFlightBackfilling ? $0 : $0 + 1 } ?? c
        if hi >= firstUnstarted { t.starts = Array(firstUnstarted...hi) }
        if lo >= completedCount { t.completes = Array(completedCount...lo) }
        return t
    }
}
