import Manifest
import Testing
@testable import Planning

// Fixtures: an app "shop" with two migrations, described compactly.

private func migration(_ number: Int, _ name: String, checksum: String? = nil) -> Migration {
    Migration(name: String(format: "%04d_%@", number, name), number: number, checksum: checksum ?? "sum-\(number)",
              operations: [.sql(RawSQL(up: "SELECT 1", down: "SELECT 1"))])
}

private let m1 = migration(1, "create_users")
private let m2 = migration(2, "split_name")
private let m3 = migration(3, "add_email")

private func spec(_ release: String, _ schema: Migration) -> ColorSpec {
    ColorSpec(release: release, command: ["python3", "app.py"], schema: schema.name)
}

private func desired(_ colors: [ColorName: ColorSpec], route: Route, migrations: [Migration] = [m1, m2, m3]) -> DesiredState {
    let env = EnvironmentManifest(database: .sqliteRelative("shop.db"), colors: colors)
    let traffic = TrafficManifest(listen: ListenAddress(host: "127.0.0.1", port: 8080), route: route)
    var app = AppManifest(name: "shop", environment: env, traffic: traffic, migrations: migrations)
    for color in colors.keys { app.specCommits[color] = "c0ffee" }
    return DesiredState(commit: "c0ffee", apps: ["shop": app])
}

private func applied(_ m: Migration) -> AppliedMigration { AppliedMigration(name: m.name, checksum: m.checksum) }

private func observed(_ colors: [ColorName: ColorSpec], route: Route, completed: [Migration], inFlight: Migration? = nil,
                      unhealthy: Set<ColorName> = [], dead: Set<ColorName> = [], reopenable: Bool = false) -> ObservedState {
    var app = ObservedApp(route: route, schema: ObservedSchema(completed: completed.map(applied), inFlight: inFlight.map(applied),
                                                               lastCompletedReopenable: reopenable))
    for (color, s) in colors {
        app.colors[color] = ObservedColor(spec: s, specCommit: "old", running: !dead.contains(color), healthy: !unhealthy.contains(color) && !dead.contains(color))
    }
    return ObservedState(apps: ["shop": app])
}

/// The steps in a compact spelling that tests compare against.
private func compact(_ plan: Plan) -> [String] {
    plan.steps.map { planned in
        switch planned.step {
        case .startMigration(_, let m): "start-migration \(m.name)"
        case .completeMigration(_, let m): "complete-migration \(m)"
        case .rollbackMigration(_, let m): "rollback-migration \(m)"
        case .reopenMigration(_, let m): "reopen-migration \(m)"
        case .startColor(_, let c, let s, _): "start \(c) \(s.release)"
        case .awaitHealthy(_, let c): "await \(c)"
        case .route(_, let r): "route \(r.description)"
        case .stopColor(_, let c, let drain): drain ? "drain-stop \(c)" : "stop \(c)"
        }
    }
}

struct Case: CustomTestStringConvertible, Sendable {
    var name: String
    var desired: DesiredState
    var observed: ObservedState
    var expected: [String]
    var testDescription: String { name }
}

private let blue1 = spec("1.4.0", m1)
private let green2 = spec("1.5.0", m2)

private let cases: [Case] = [
    Case(name: "first deploy",
         desired: desired([.blue: blue1], route: .live(.blue)),
         observed: ObservedState(),
         expected: ["start-migration 0001_create_users", "complete-migration 0001_create_users", "start blue 1.4.0",
                    "route all traffic to blue"]),
    Case(name: "deploy green with its migration; traffic untouched",
         desired: desired([.blue: blue1, .green: green2], route: .live(.blue)),
         observed: observed([.blue: blue1], route: .live(.blue), completed: [m1]),
         expected: ["start-migration 0002_split_name", "start green 1.5.0"]),
    Case(name: "switch to green",
         desired: desired([.blue: blue1, .green: green2], route: .live(.green)),
         observed: observed([.blue: blue1, .green: green2], route: .live(.blue), completed: [m1], inFlight: m2),
         expected: ["route all traffic to green"]),
    Case(name: "revert of the switch",
         desired: desired([.blue: blue1, .green: green2], route: .live(.blue)),
         observed: observed([.blue: blue1, .green: green2], route: .live(.green), completed: [m1], inFlight: m2),
         expected: ["route all traffic to blue"]),
    Case(name: "revert of the deploy: traffic stays, green stops, migration rolls back",
         desired: desired([.blue: blue1], route: .live(.blue)),
         observed: observed([.blue: blue1, .green: green2], route: .live(.blue), completed: [m1], inFlight: m2),
         expected: ["stop green", "rollback-migration 0002_split_name"]),
    Case(name: "revert of the deploy that also removed the migration file",
         desired: desired([.blue: blue1], route: .live(.blue), migrations: [m1]),
         observed: observed([.blue: blue1, .green: green2], route: .live(.blue), completed: [m1], inFlight: m2),
         expected: ["stop green", "rollback-migration 0002_split_name"]),
    Case(name: "finish: blue removed, migration completes",
         desired: desired([.green: green2], route: .live(.green)),
         observed: observed([.blue: blue1, .green: green2], route: .live(.green), completed: [m1], inFlight: m2),
         expected: ["stop blue", "complete-migration 0002_split_name"]),
    Case(name: "finish with blue moved to the new release",
         desired: desired([.blue: spec("1.5.0", m2), .green: green2], route: .live(.green)),
         observed: observed([.blue: blue1, .green: green2], route: .live(.green), completed: [m1], inFlight: m2),
         expected: ["stop blue", "complete-migration 0002_split_name", "start blue 1.5.0"]),
    Case(name: "both reverts in one commit: switch first, then stop, then roll back",
         desired: desired([.blue: blue1], route: .live(.blue)),
         observed: observed([.blue: blue1, .green: green2], route: .live(.green), completed: [m1], inFlight: m2),
         expected: ["route all traffic to blue", "drain-stop green", "rollback-migration 0002_split_name"]),
    Case(name: "live color's release changes in the commit that moves traffic away",
         desired: desired([.blue: spec("1.4.1", m1), .green: green2], route: .live(.green)),
         observed: observed([.blue: blue1, .green: green2], route: .live(.blue), completed: [m1], inFlight: m2),
         expected: ["route all traffic to green", "drain-stop blue", "start blue 1.4.1"]),
    Case(name: "deploy, switch and finish in one commit",
         desired: desired([.green: green2], route: .live(.green)),
         observed: observed([.blue: blue1], route: .live(.blue), completed: [m1]),
         expected: ["start-migration 0002_split_name", "start green 1.5.0", "route all traffic to green", "drain-stop blue",
                    "complete-migration 0002_split_name"]),
    Case(name: "canary split waits for an unhealthy green",
         desired: desired([.blue: blue1, .green: green2], route: Route(weights: [.blue: 90, .green: 10])),
         observed: observed([.blue: blue1, .green: green2], route: .live(.blue), completed: [m1], inFlight: m2, unhealthy: [.green]),
         expected: ["await green", "route blue 90%, green 10%"]),
    Case(name: "a dead live color is restarted and routed again",
         desired: desired([.blue: blue1], route: .live(.blue)),
         observed: observed([.blue: blue1], route: .live(.blue), completed: [m1], dead: [.blue]),
         expected: ["start blue 1.4.0", "route all traffic to blue"]),
    Case(name: "nothing changed: empty plan",
         desired: desired([.blue: blue1, .green: green2], route: .live(.blue)),
         observed: observed([.blue: blue1, .green: green2], route: .live(.blue), completed: [m1], inFlight: m2),
         expected: []),
    Case(name: "revert of the finish while its complete can be undone: the migration is reopened before blue starts",
         desired: desired([.blue: blue1, .green: green2], route: .live(.green)),
         observed: observed([.green: green2], route: .live(.green), completed: [m1, m2], reopenable: true),
         expected: ["reopen-migration 0002_split_name", "start blue 1.4.0"]),
    Case(name: "revert of the finish and of the switch: reopen, blue, then traffic",
         desired: desired([.blue: blue1, .green: green2], route: .live(.blue)),
         observed: observed([.green: green2], route: .live(.green), completed: [m1, m2], reopenable: true),
         expected: ["reopen-migration 0002_split_name", "start blue 1.4.0", "route all traffic to blue"]),
    Case(name: "reopen with a later migration in flight: it rolls back first",
         desired: desired([.blue: blue1, .green: green2], route: .live(.green)),
         observed: observed([.green: green2], route: .live(.green), completed: [m1, m2], inFlight: m3, reopenable: true),
         expected: ["rollback-migration 0003_add_email", "reopen-migration 0002_split_name", "start blue 1.4.0"]),
    Case(name: "revert of both the finish and the deploy: reopen now, the rollback on the next pass once green is gone",
         desired: desired([.blue: blue1], route: .live(.blue)),
         observed: observed([.green: green2], route: .live(.green), completed: [m1, m2], reopenable: true),
         expected: ["reopen-migration 0002_split_name", "start blue 1.4.0", "route all traffic to blue", "drain-stop green"]),
    Case(name: "first deploy straight to the third migration, one in flight at a time",
         desired: desired([.blue: spec("2.0.0", m3)], route: .live(.blue)),
         observed: ObservedState(),
         expected: ["start-migration 0001_create_users", "complete-migration 0001_create_users", "start-migration 0002_split_name",
                    "complete-migration 0002_split_name", "start-migration 0003_add_email", "complete-migration 0003_add_email",
                    "start blue 2.0.0", "route all traffic to blue"]),
]

@Test(arguments: cases)
func plansInOrder(_ c: Case) {
    let plan = Planner.plan(desired: c.desired, observed: c.observed)
    #expect(plan.refusals.isEmpty, "unexpected refusal: \(plan.refusals)")
    #expect(compact(plan) == c.expected)
    #expect(plan.steps.allSatisfy { !$0.reason.isEmpty })
}

struct RefusedCase: CustomTestStringConvertible, Sendable {
    var name: String
    var desired: DesiredState
    var observed: ObservedState
    var messageContains: String
    var hintContains: String
    var testDescription: String { name }
}

private let refused: [RefusedCase] = [
    RefusedCase(name: "two migrations in flight on one database",
                desired: desired([.blue: blue1, .green: spec("2.0.0", m3)], route: .live(.blue)),
                observed: observed([.blue: blue1], route: .live(.blue), completed: [m1]),
                messageContains: "at most one may be", hintContains: "one migration at a time"),
    RefusedCase(name: "restarting the live color with no healthy color to move traffic to",
                desired: desired([.blue: spec("1.4.1", m1)], route: .live(.blue)),
                observed: observed([.blue: blue1], route: .live(.blue), completed: [m1]),
                messageContains: "blue must restart (release 1.4.0 → 1.4.1) while it receives traffic",
                hintContains: "deploy the new release as green first"),
    RefusedCase(name: "a color needs a migration that was completed and is gone",
                desired: desired([.blue: blue1], route: .live(.blue)),
                observed: observed([.green: green2], route: .live(.green), completed: [m1, m2]),
                messageContains: "0002_split_name was already completed", hintContains: "cannot be rolled back"),
    RefusedCase(name: "a color needs the shape before a complete the database can no longer undo",
                desired: desired([.blue: blue1, .green: green2], route: .live(.green)),
                observed: {
                    var o = observed([.green: green2], route: .live(.green), completed: [m1, m2], reopenable: false)
                    o.apps["shop"]!.schema.lastCompletedFinalBecause = "the retention window (7d) has passed since its complete"
                    return o
                }(),
                messageContains: "0002_split_name was already completed", hintContains: "cannot be undone: the retention window (7d) has passed"),
    RefusedCase(name: "a color needs a shape two completes back, even where the last one could be undone",
                desired: desired([.blue: blue1], route: .live(.blue)),
                observed: observed([.green: spec("2.0.0", m3)], route: .live(.green), completed: [m1, m2, m3], reopenable: true),
                messageContains: "0003_add_email was already completed", hintContains: "cannot be rolled back"),
    RefusedCase(name: "an applied migration's file changed",
                desired: desired([.blue: blue1], route: .live(.blue), migrations: [migration(1, "create_users", checksum: "edited"), m2]),
                observed: observed([.blue: blue1], route: .live(.blue), completed: [m1]),
                messageContains: "changed after it was applied", hintContains: "add a new migration"),
    RefusedCase(name: "a completed migration's file was removed",
                desired: desired([.blue: blue1], route: .live(.blue), migrations: [m1]),
                observed: observed([.blue: spec("1.5.0", m2)], route: .none, completed: [m1, m2]),
                messageContains: "its file is not in schema/", hintContains: "restore 0002_split_name.yaml"),
    RefusedCase(name: "no safe order: the new color needs a migration that waits for the live color to stop",
                desired: desired([.green: spec("2.0.0", m3)], route: .live(.green)),
                observed: observed([.blue: blue1, .green: green2], route: .live(.blue), completed: [m1], inFlight: m2),
                messageContains: "no order of steps keeps every invariant", hintContains: "split the change"),
]

@Test(arguments: refused)
func refusesUnsafeStates(_ c: RefusedCase) {
    let plan = Planner.plan(desired: c.desired, observed: c.observed)
    #expect(plan.steps.isEmpty)
    let refusal = try? #require(plan.refusals.first)
    #expect(refusal?.message.contains(c.messageContains) == true, "message was: \(refusal?.message ?? "none")")
    #expect(refusal?.hint.contains(c.hintContains) == true, "hint was: \(refusal?.hint ?? "none")")
}

/// Every plan the planner emits keeps the five invariants, checked by simulating it.
@Test(arguments: cases)
func plansKeepInvariants(_ c: Case) throws {
    let plan = Planner.plan(desired: c.desired, observed: c.observed)
    var sim = Simulation(c.observed.apps["shop"] ?? ObservedApp(), migrations: c.desired.apps["shop"]!.migrations)
    for step in plan.steps { try sim.apply(step.step) }
    #expect(sim.route == c.desired.apps["shop"]!.route)
    #expect(Set(sim.running.keys) == Set(c.desired.apps["shop"]!.environment.colors.keys))
}

/// A tiny executor that tracks the state a plan moves through and fails on any broken invariant.
struct Simulation {
    var running: [ColorName: (spec: ColorSpec, healthy: Bool)] = [:]
    var route: Route
    var completed: [String]
    var inFlight: String?
    let order: [String]

    init(_ app: ObservedApp, migrations: [Migration]) {
        for (c, o) in app.colors where o.running { running[c] = (o.spec, o.healthy) }
        route = app.route
        completed = app.schema.completed.map(\.name)
        inFlight = app.schema.inFlight?.name
        order = migrations.map(\.name)
    }

    struct Broken: Error { var invariant: Int; var detail: String }

    func index(_ name: String) -> Int { order.firstIndex(of: name) ?? completed.count }

    /// The migrations a color on `schema` can run against right now.
    func serves(_ schema: String) -> Bool {
        schema == completed.last || schema == inFlight
    }

    mutating func apply(_ step: Step) throws {
        switch step {
        case .route(_, let r):
            for c in r.colors where running[c]?.healthy != true { throw Broken(invariant: 1, detail: "traffic to \(c)") }
            route = r
        case .stopColor(_, let c, _):
            if route.weight(of: c) > 0 { throw Broken(invariant: 2, detail: "stopped \(c) with traffic") }
            running[c] = nil
        case .startColor(_, let c, let spec, _):
            if !serves(spec.schema) { throw Broken(invariant: 3, detail: "\(c) started before \(spec.schema)") }
            running[c] = (spec, true)
        case .awaitHealthy(_, let c):
            running[c]?.healthy = true
        case .startMigration(_, let m):
            if inFlight != nil { throw Broken(invariant: 0, detail: "two in flight") }
            inFlight = m.name
        case .completeMigration(_, let m):
            for (c, r) in running where index(r.spec.schema) < index(m) { throw Broken(invariant: 5, detail: "\(c) still on \(r.spec.schema)") }
            completed.append(m)
            inFlight = nil
        case .rollbackMigration(_, let m):
            for (c, r) in running where r.spec.schema == m { throw Broken(invariant: 4, detail: "\(c) still on \(m)") }
            inFlight = nil
        case .reopenMigration(_, let m):
            if inFlight != nil { throw Broken(invariant: 0, detail: "reopened \(m) with \(inFlight!) in flight") }
            guard completed.last == m else { throw Broken(invariant: 0, detail: "reopened \(m), which is not the last completed") }
            completed.removeLast()
            inFlight = m
        }
    }
}

@Test func afterTheReopenTheNextPassRollsBackWhatNoColorNeeds() {
    let plan = Planner.plan(desired: desired([.blue: blue1], route: .live(.blue)),
                            observed: observed([.blue: blue1], route: .live(.blue), completed: [m1], inFlight: m2))
    #expect(compact(plan) == ["rollback-migration 0002_split_name"])
}

@Test func aStartCutShortInItsBackfillIsStartedAgainBeforeColorsNeedIt() {
    var state = observed([.blue: blue1], route: .live(.blue), completed: [m1], inFlight: m2)
    state.apps["shop"]!.schema.inFlightBackfilling = true
    let plan = Planner.plan(desired: desired([.blue: blue1, .green: green2], route: .live(.blue)), observed: state)
    #expect(compact(plan) == ["start-migration 0002_split_name", "start green 1.5.0"])
}

/// The last completed migration's reopen was cut off half-way (`reopening` in the database).
private func cutOffReopen(_ colors: [ColorName: ColorSpec], completed: [Migration] = [m1, m2]) -> ObservedState {
    var state = observed(colors, route: .live(.green), completed: completed, reopenable: true)
    state.apps["shop"]!.schema.lastCompletedReopening = true
    return state
}

@Test func aCutOffReopenStillAskedForIsFinishedBeforeTheOldShapesColorStarts() {
    let plan = Planner.plan(desired: desired([.blue: blue1, .green: green2], route: .live(.green)), observed: cutOffReopen([.green: green2]))
    #expect(compact(plan) == ["reopen-migration 0002_split_name", "start blue 1.4.0"])
    #expect(plan.steps.first?.reason.contains("the reopen of 0002_split_name was cut off: it is finished") == true, "\(plan.steps)")
}

@Test func aCutOffReopenNoLongerAskedForIsCompletedAgain() {
    // The revert was itself reverted before its reopen finished: only green, on the new shape, is declared.
    let plan = Planner.plan(desired: desired([.green: green2], route: .live(.green)), observed: cutOffReopen([.green: green2]))
    #expect(compact(plan) == ["complete-migration 0002_split_name"])
    #expect(plan.steps.first?.reason.contains("the reopen of 0002_split_name was cut off and no declared color needs the shape before it") == true,
            "\(plan.steps)")
    // Once completed again, nothing is left to do.
    let after = Planner.plan(desired: desired([.green: green2], route: .live(.green)),
                             observed: observed([.green: green2], route: .live(.green), completed: [m1, m2], reopenable: true))
    #expect(compact(after) == [])
}

@Test func aCutOffReopenIsCompletedAgainBeforeTheNextMigrationStarts() {
    let plan = Planner.plan(desired: desired([.green: green2, .blue: spec("2.0.0", m3)], route: .live(.green)), observed: cutOffReopen([.green: green2]))
    #expect(compact(plan) == ["complete-migration 0002_split_name", "start-migration 0003_add_email", "start blue 2.0.0"])
    // With no color declared at all the reopen is undone too, not left half-way.
    let bare = Planner.plan(desired: desired([:], route: .live(.green)), observed: cutOffReopen([:]))
    #expect(compact(bare) == ["complete-migration 0002_split_name"])
}

@Test func aNewListenAddressIsRouted() {
    var state = observed([.blue: blue1], route: .live(.blue), completed: [m1])
    state.apps["shop"]!.listen = ListenAddress(host: "127.0.0.1", port: 9090)
    let plan = Planner.plan(desired: desired([.blue: blue1], route: .live(.blue)), observed: state)
    #expect(compact(plan) == ["route all traffic to blue"])
    #expect(plan.steps.first?.reason.contains("listen address") == true)
    state.apps["shop"]!.listen = ListenAddress(host: "127.0.0.1", port: 8080)
    #expect(Planner.plan(desired: desired([.blue: blue1], route: .live(.blue)), observed: state).steps.isEmpty)
}

@Test func tlsOrTrustedForwardersChangingOnTheSameAddressAreRouted() {
    var state = observed([.blue: blue1], route: .live(.blue), completed: [m1])
    state.apps["shop"]!.listen = ListenAddress(host: "127.0.0.1", port: 8080)
    var wanted = desired([.blue: blue1], route: .live(.blue))
    let tls = TrafficTLS(certificate: "/etc/teal/cert.pem", key: "/etc/teal/key.pem")
    wanted.apps["shop"]!.traffic!.tls = tls
    var plan = Planner.plan(desired: wanted, observed: state)
    #expect(compact(plan) == ["route all traffic to blue"])
    #expect(plan.steps.first?.reason.contains("with TLS from /etc/teal/cert.pem") == true, "\(plan.steps)")
    state.apps["shop"]!.tls = tls
    #expect(Planner.plan(desired: wanted, observed: state).steps.isEmpty)

    wanted.apps["shop"]!.traffic!.trustedForwarders = ["10.0.0.0/8"]
    plan = Planner.plan(desired: wanted, observed: state)
    #expect(compact(plan) == ["route all traffic to blue"])
    #expect(plan.steps.first?.reason.contains("trusted forwarders") == true, "\(plan.steps)")
    state.apps["shop"]!.trustedForwarders = ["10.0.0.0/8"]
    #expect(Planner.plan(desired: wanted, observed: state).steps.isEmpty)

    wanted.apps["shop"]!.traffic!.tls = nil
    plan = Planner.plan(desired: wanted, observed: state)
    #expect(plan.steps.first?.reason.contains("without TLS") == true, "\(plan.steps)")
}
