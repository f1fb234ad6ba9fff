import Foundation
import State

/// Where a commit's progress is reported outside teal: commit statuses on GitHub, GitLab or Gitea, a generic
/// JSON webhook. The pipeline tells it when a pass for a new commit starts running its plan (`pending`) and how
/// the commit's reconcile ended (its outcome).
///
/// A report is handed over and the pass goes on: delivery (with its retries) happens elsewhere, can never fail
/// or hold up a pass, and is never part of the commit's outcome.
public protocol OutcomeReporter: Sendable {
    /// Queues `report` for delivery and returns at once.
    func report(_ report: CommitReport)
    /// Waits until what was queued is delivered or given up, at most `timeout` (a command that exits after one
    /// pass calls it before exiting).
    func flush(timeout: Duration) async
}

/// Reports that go nowhere.
public struct NoReporter: OutcomeReporter {
    public init() {}
    public func report(_ report: CommitReport) {}
    public func flush(timeout: Duration) async {}
}

/// One thing to report about a commit.
public struct CommitReport: Sendable, Equatable {
    public enum Event: String, Sendable, Equatable {
        /// A pass for the commit started running its plan; the outcome follows.
        case pending
        /// The commit's reconcile ended with `outcome`.
        case outcome
    }

    public var event: Event
    public var commit: String
    /// nil for `pending`.
    public var outcome: Outcome?
    /// The apps the commit's plan touches (all the commit's apps when it has no plan).
    public var apps: [String]
    /// One line: what was done or why it was not.
    public var message: String
    /// The errors of the outcome (validation errors, refusals, the failing step).
    public var errors: [String]
    /// For `superseded`: the newer commit.
    public var supersededBy: String?
    public var host: String
    public var time: Date

    public init(event: Event, commit: String, outcome: Outcome? = nil, apps: [String] = [], message: String, errors: [String] = [],
                supersededBy: String? = nil, host: String, time: Date = Date()) {
        self.event = event
        self.commit = commit
        self.outcome = outcome
        self.apps = apps
        self.message = message
        self.errors = errors
        self.supersededBy = supersededBy
        self.host = host
        self.time = time
    }

    /// The report of an ended reconcile.
    public static func ended(_ audit: AuditRecord, apps: [String]) -> CommitReport {
        let took = String(format: "%.1fs", audit.finishedAt.timeIntervalSince(audit.startedAt))
        let ran = audit.steps.filter { !$0.superseded }.count
        let message: String
        switch audit.outcome {
        case .applied:
            message = "applied: \(ran) step\(ran == 1 ? "" : "s") in \(took)"
        case .noop:
            message = "nothing under apps/ changed" + (audit.unchangedSince.map { " since \($0.prefix(8))" } ?? "")
        case .superseded:
            message = "superseded" + (audit.supersededBy.map { " by \($0.prefix(8))" } ?? " by a newer commit") + ": not applied"
        case .failed, .refused:
            message = "\(audit.outcome.rawValue): " + (audit.errors.first ?? "see the note on the commit")
        }
        return CommitReport(event: .outcome, commit: audit.commit, outcome: audit.outcome, apps: apps, message: message,
                            errors: audit.errors, supersededBy: audit.supersededBy, host: audit.host, time: audit.finishedAt)
    }
}
