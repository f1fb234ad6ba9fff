import Manifest

/// One action of a plan. Each step carries what it needs, so a journaled step can run after a restart.
public enum Step: Codable, Hashable, Sendable {
    /// Expand: make migration `migration` available alongside the previous shape.
    case startMigration(app: String, migration: Migration)
    /// Contract: remove the previous shape.
    case completeMigration(app: String, migration: String)
    /// Undo a started migration, from the definition stored in the database.
    case rollbackMigration(app: String, migration: String)
    /// Undo the last completed migration's complete: its old shape comes back beside the new one, computed from
    /// today's rows, and the migration is in flight again (possible while what the complete put aside is kept).
    case reopenMigration(app: String, migration: String)
    /// Start a color's process and wait until it is healthy (fails after health.start_timeout).
    case startColor(app: String, color: ColorName, spec: ColorSpec, commit: String)
    /// Wait until a running color passes its health check.
    case awaitHealthy(app: String, color: ColorName)
    /// Point the app's traffic at `route`; requests in flight elsewhere finish.
    case route(app: String, route: Route)
    /// Stop a color; with `drain`, first wait for in-flight requests (up to the app's drain time).
    case stopColor(app: String, color: ColorName, drain: Bool)

    public var app: String {
        switch self {
        case .startMigration(let app, _), .completeMigration(let app, _), .rollbackMigration(let app, _), .reopenMigration(let app, _),
             .startColor(let app, _, _, _), .awaitHealthy(let app, _), .route(let app, _), .stopColor(let app, _, _):
            app
        }
    }

    /// A step that can stop part-way when a newer commit arrives and leave a state the next plan continues from
    /// or undoes: a migration's start (its backfill) and a reopen (its fill of the old shape).
    public var isInterruptible: Bool {
        switch self {
        case .startMigration, .reopenMigration: true
        default: false
        }
    }

    /// The color a step starts, waits for or stops; nil for migrations and routes.
    public var color: ColorName? {
        switch self {
        case .startColor(_, let color, _, _), .awaitHealthy(_, let color), .stopColor(_, let color, _): color
        default: nil
        }
    }

    /// A one-line description a person can read.
    public var summary: String {
        switch self {
        case .startMigration(let app, let m): "\(app): start migration \(m.name)"
        case .completeMigration(let app, let m): "\(app): complete migration \(m)"
        case .rollbackMigration(let app, let m): "\(app): roll back migration \(m)"
        case .reopenMigration(let app, let m): "\(app): reopen migration \(m) (undo its complete)"
        case .startColor(let app, let c, let spec, let commit):
            "\(app): start \(c) (release \(spec.release), schema \(spec.schema), commit \(commit.prefix(8)))"
        case .awaitHealthy(let app, let c): "\(app): wait for \(c) to be healthy"
        case .route(let app, let r): "\(app): route \(r)"
        case .stopColor(let app, let c, let drain): "\(app): \(drain ? "drain and stop" : "stop") \(c)"
        }
    }
}

/// A step and why the planner chose it.
public struct PlannedStep: Codable, Hashable, Sendable, CustomStringConvertible {
    public var step: Step
    public var reason: String

    public init(_ step: Step, reason: String) {
        self.step = step
        self.reason = reason
    }

    public var description: String { "\(step.summary) — \(reason)" }
}

/// A desired state the planner will not reach, with why and what would work.
public struct Refusal: Error, Codable, Hashable, Sendable, CustomStringConvertible {
    public var app: String
    public var message: String
    public var hint: String

    public init(app: String, message: String, hint: String) {
        self.app = app
        self.message = message
        self.hint = hint
    }

    public var description: String { "\(app): refused: \(message)\n  hint: \(hint)" }
}

/// The result of planning: steps for the apps that can be reconciled, refusals for the others.
public struct Plan: Codable, Hashable, Sendable {
    public var steps: [PlannedStep]
    public var refusals: [Refusal]

    public init(steps: [PlannedStep] = [], refusals: [Refusal] = []) {
        self.steps = steps
        self.refusals = refusals
    }

    public var isEmpty: Bool { steps.isEmpty && refusals.isEmpty }
}
