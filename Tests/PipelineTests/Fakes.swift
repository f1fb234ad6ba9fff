import Foundation
import Manifest
import Planning
import Reconcile
import State
import Synchronization

/// In-memory stand-ins for the four seams, so the pipeline is tested without git, processes, sockets or files.

/// A box for state a fake shares with the test.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func get() -> Value { value.withLock { $0 } }
    func update<T>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}

/// Commits are desired states by id; the tip is whichever the test sets.
struct FakeSource: Source {
    let tipCommit: Shared<String>
    let states: Shared<[String: DesiredState]>
    let notes = Shared<[String: String]>([:])
    let history = Shared<[String]>([])
    /// Commits the test says change nothing under apps/ (compared with any other); others: cannot tell.
    let outsideApps = Shared<Set<String>>([])

    init(_ first: DesiredState) {
        tipCommit = Shared(first.commit)
        states = Shared([first.commit: first])
        history.update { $0 = [first.commit] }
    }

    /// Makes `desired` the new tip, a child of the current one.
    func commit(_ desired: DesiredState) {
        states.update { $0[desired.commit] = desired }
        history.update { $0.append(desired.commit) }
        tipCommit.update { $0 = desired.commit }
    }

    var description: String { "fake" }
    func tip() async throws -> String { tipCommit.get() }
    func desiredState(at commit: String) async throws -> DesiredState {
        guard let state = states.get()[commit] else { throw ReconcileFailure.permanent("no commit \(commit)") }
        return state
    }
    func commits(after ancestor: String, before tip: String) async throws -> [String] {
        let all = history.get()
        guard let from = all.firstIndex(of: ancestor), let to = all.firstIndex(of: tip), from < to else { return [] }
        return Array(all[(from + 1)..<to].reversed())
    }
    func isAncestor(_ ancestor: String, of commit: String) async throws -> Bool {
        let all = history.get()
        guard let a = all.firstIndex(of: ancestor), let c = all.firstIndex(of: commit) else { return false }
        return a <= c
    }
    func summary(of commit: String) async throws -> CommitSummary? {
        CommitSummary(author: "Ada <ada@example.com>", subject: "Commit \(commit)")
    }
    func changesApps(from commit: String, to other: String) async throws -> Bool? { outsideApps.get().contains(other) ? false : nil }
    func note(for commit: String) async throws -> String? { notes.get()[commit] }
    func setNote(_ text: String, for commit: String) async throws { notes.update { $0[commit] = text } }
    func workingCopy(app: String, commit: String) async throws -> String { "/fake/\(app)/\(commit)" }
    func pruneWorkingCopies(keeping: [(app: String, commit: String)]) async -> Int { 0 }
}

/// A database whose history lives in memory; `failures` are thrown by the next calls of `start`, in order.
final class FakeSchemaBackend: SchemaBackend, Sendable {
    let history = Shared(ObservedSchema())
    let failures = Shared<[ReconcileFailure]>([])
    let starts = Shared(0)
    /// When set, `start` backfills until `shouldStop` says so, then throws as an interrupted backfill does.
    let backfillsUntilStopped = Shared(false)
    /// When set, what such a start throws once stopped (a real failure that comes as the stop is asked).
    let failureWhenStopped = Shared<ReconcileFailure?>(nil)
    let maintained = Shared(0)

    var description: String { "fake database" }
    func maintain() async { maintained.update { $0 += 1 } }
    func observe() async throws -> ObservedSchema? { history.get() }
    func start(_ migration: Migration, progress: @escaping @Sendable (Int, Int) -> Void,
               shouldStop: @escaping @Sendable () -> Bool) async throws {
        starts.update { $0 += 1 }
        if let failure = failures.update({ $0.isEmpty ? nil : $0.removeFirst() }) { throw failure }
        if backfillsUntilStopped.get() {
            history.update { $0.inFlight = AppliedMigration(name: migration.name, checksum: migration.checksum) }
            while !shouldStop() { try await Task.sleep(for: .milliseconds(5)) }
            throw failureWhenStopped.get() ?? ReconcileFailure.transient("the backfill was interrupted")
        }
        progress(10, 10)
        history.update { $0.inFlight = AppliedMigration(name: migration.name, checksum: migration.checksum) }
    }
    func complete(_ name: String) async throws {
        history.update { h in
            if let flight = h.inFlight, flight.name == name { h.completed.append(flight); h.inFlight = nil }
            if h.completed.last?.name == name { h.lastCompletedReopening = false }
        }
    }
    func rollback(_ name: String) async throws { history.update { $0.inFlight = nil } }
    let reopens = Shared(0)
    /// A reopen that fills the old shape until `shouldStop` says so, then is left `reopening` and throws as an
    /// interrupted fill does.
    func reopen(_ name: String, progress: @escaping @Sendable (Int, Int) -> Void, shouldStop: @escaping @Sendable () -> Bool) async throws {
        history.update { $0.lastCompletedReopening = true }
        reopens.update { $0 += 1 }
        while !shouldStop() { try await Task.sleep(for: .milliseconds(5)) }
        throw ReconcileFailure.transient("filling the old shape was interrupted")
    }
}

struct FakeSchemas: SchemaBackends {
    let backend: FakeSchemaBackend
    /// How many backends were asked for without environment.yaml's database settings.
    let withoutOptions = Shared<Int>(0)
    func backend(for database: DatabaseLocation) throws -> any SchemaBackend {
        withoutOptions.update { $0 += 1 }
        return backend
    }
    /// The database settings the last backend was asked with.
    let options = Shared<DatabaseOptions?>(nil)
    func backend(for database: DatabaseLocation, options: DatabaseOptions) throws -> any SchemaBackend {
        self.options.update { $0 = options }
        return backend
    }
    func validate(_ migrations: [Migration], for database: DatabaseLocation) -> [Diagnostic] {
        migrations.filter { $0.name.hasSuffix("_invalid") }.map {
            Diagnostic(path: "apps/shop/schema/\($0.name).yaml", line: 3, column: 7, message: "cannot run here")
        }
    }
}

struct FakeTraffic: TrafficDriver {
    let served = Shared<[String: ServedRoute]>([:])
    func ensureRunning() async throws {}
    func health() async -> TrafficDriverHealth { .answering(pid: nil) }
    func routes() async throws -> [String: ServedRoute] { served.get() }
    func setRoute(app: String, _ route: ServedRoute) async throws { served.update { $0[app] = route } }
    func removeRoute(app: String) async throws { served.update { $0[app] = nil } }
    func mark(app: String, color: ColorName, up: Bool) async throws {
        served.update { $0[app]?.upstreams[color]?.up = up }
    }
    func counters() async throws -> [String: [ColorName: TrafficCounters]] { [:] }
    /// Addresses another process holds, as the test says.
    let held = Shared<[ListenAddress: String]>([:])
    func listenHolder(_ address: ListenAddress) async -> String? { held.get()[address] }
}

/// Colors that "run" as entries of a set; `unhealthy` never pass a health check. `onStart` runs inside start.
struct FakeRuntime: ColorRuntime {
    let alive = Shared<Set<String>>([])
    let unhealthy = Shared<Set<ColorName>>([])
    let started = Shared<[String]>([])
    let onStart = Shared<(@Sendable () -> Void)?>(nil)

    func start(_ launch: ColorLaunch) async throws -> ColorRecord {
        let id = "\(launch.app)-\(launch.color)-\(started.get().count)"
        started.update { $0.append(id) }
        alive.update { _ = $0.insert(id) }
        onStart.get()?()
        return ColorRecord(app: launch.app, color: launch.color, spec: launch.spec, specCommit: launch.commit,
                           handle: ColorHandle(runtime: "fake", id: id), port: 1000 + started.get().count, health: launch.health)
    }
    func isAlive(_ handle: ColorHandle) -> Bool { alive.get().contains(handle.id) }
    func inspect(_ handle: ColorHandle) -> ColorInspection { ColorInspection(alive: isAlive(handle)) }
    func stop(_ handle: ColorHandle, grace: Duration) async { alive.update { _ = $0.remove(handle.id) } }
    func probe(_ record: ColorRecord, health: HealthCheck) async -> Bool { !unhealthy.get().contains(record.color) }
    func waitHealthy(_ record: ColorRecord, health: HealthCheck) async throws {
        if unhealthy.get().contains(record.color) {
            throw ReconcileFailure.permanent("\(record.app) \(record.color) did not become healthy")
        }
    }
    func maintain(_ record: ColorRecord) {}
}

/// One app, `blue` on `schema`, optionally `green` on a second migration, traffic on `live`.
func shop(commit: String, green: Bool = false, live: ColorName = .blue) -> DesiredState {
    let first = Migration(name: "0001_init", number: 1, checksum: "a", operations: [])
    let second = Migration(name: "0002_more", number: 2, checksum: "b", operations: [])
    var colors: [ColorName: ColorSpec] = [.blue: ColorSpec(release: "1.0", command: ["app"], schema: "0001_init")]
    if green { colors[.green] = ColorSpec(release: "2.0", command: ["app"], schema: "0002_more") }
    let environment = EnvironmentManifest(database: .sqliteRelative("shop.db"), colors: colors)
    let app = AppManifest(name: "shop", environment: environment,
                          traffic: TrafficManifest(listen: ListenAddress(host: "127.0.0.1", port: 8080), route: .live(live)),
                          migrations: green ? [first, second] : [first], specCommits: colors.mapValues { _ in commit })
    return DesiredState(commit: commit, apps: ["shop": app])
}

/// Signatures as the test says: commits in `bad` are refused with their reason, every other one verifies.
struct FakeVerifier: CommitVerifier {
    let bad = Shared<[String: String]>([:])
    let history: Shared<[String]>
    let checked = Shared<[String]>([])

    func commits(tip: String, since lastApplied: String?, mode: VerifyMode) async throws -> [String] {
        guard mode == .all else { return [tip] }
        let all = history.get()
        let from = lastApplied.flatMap { all.firstIndex(of: $0) }.map { $0 + 1 } ?? 0
        return Array(all[from...].reversed())
    }

    func verify(_ commit: String) async throws -> String {
        checked.update { $0.append(commit) }
        if let reason = bad.get()[commit] { throw SignatureRefusal(commit: commit, reason: reason) }
        return "ops@example.com"
    }
}

/// Remembers every report in the order the pipeline handed them over.
struct FakeReporter: OutcomeReporter {
    let reports = Shared<[CommitReport]>([])
    func report(_ report: CommitReport) { reports.update { $0.append(report) } }
    func flush(timeout: Duration) async {}

    /// `pending` or the outcome, per report, for one commit.
    func events(_ commit: String) -> [String] {
        reports.get().filter { $0.commit == commit }.map { $0.outcome?.rawValue ?? $0.event.rawValue }
    }
}

/// The pipeline over fresh fakes and an in-memory state store.
struct Rig {
    let source: FakeSource
    let schema = FakeSchemaBackend()
    let schemas: FakeSchemas
    let traffic = FakeTraffic()
    let runtime = FakeRuntime()
    let store: StateStore
    let pipeline: ReconcilePipeline
    let verifier: FakeVerifier
    let reporter = FakeReporter()

    init(_ first: DesiredState, verify: VerifyMode? = nil) throws {
        source = FakeSource(first)
        store = try StateStore.inMemory()
        verifier = FakeVerifier(history: source.history)
        schemas = FakeSchemas(backend: schema)
        pipeline = ReconcilePipeline(drivers: ReconcileDrivers(source: source, schemas: schemas, traffic: traffic,
                                                               runtime: runtime, verifier: verify == nil ? nil : verifier,
                                                               reporter: reporter),
                                     store: store, configuration: .init(host: "test-host", verify: verify, crashBeforeStep: nil))
    }
}
