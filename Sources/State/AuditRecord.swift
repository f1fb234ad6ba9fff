import Foundation

/// How one commit's reconcile ended and what it did: the audit record, written as a git note under
/// `refs/notes/teal` and to the state store.
public struct AuditRecord: Sendable, Equatable {
    public struct StepRecord: Sendable, Equatable {
        public var summary: String
        public var seconds: Double
        public var error: String?
        public var superseded: Bool

        public init(summary: String, seconds: Double, error: String? = nil, superseded: Bool = false) {
            self.summary = summary
            self.seconds = seconds
            self.error = error
            self.superseded = superseded
        }
    }

    public var commit: String
    public var outcome: Outcome
    public var host: String
    public var startedAt: Date
    public var finishedAt: Date
    public var steps: [StepRecord] = []
    /// Validation errors, refusals or the failing step's error.
    public var errors: [String] = []
    /// Who made the commit (`Name <email>`) and its subject, when the source could tell.
    public var author: String?
    public var subject: String?
    /// For `superseded`: the commit that replaced this one.
    public var supersededBy: String?
    /// For `noop`: the last applied commit, whose `apps/` the commit leaves as it was.
    public var unchangedSince: String?

    public init(commit: String, outcome: Outcome, host: String, startedAt: Date, finishedAt: Date) {
        self.commit = commit
        self.outcome = outcome
        self.host = host
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    /// The note text: `outcome: X` first, then a line per step with its duration, then errors.
    public var note: String {
        var lines = ["outcome: \(outcome.rawValue)"]
        lines.append("host: \(host)")
        if let subject { lines.append("subject: \(subject.replacingOccurrences(of: "\n", with: " "))") }
        if let author { lines.append("author: \(author.replacingOccurrences(of: "\n", with: " "))") }
        lines.append("started: \(startedAt.formatted(.iso8601))")
        lines.append("finished: \(finishedAt.formatted(.iso8601)) (\(String(format: "%.2f", finishedAt.timeIntervalSince(startedAt)))s)")
        if let supersededBy { lines.append("superseded by: \(supersededBy)") }
        if let unchangedSince { lines.append("nothing under apps/ changed since: \(unchangedSince)") }
        for (i, step) in steps.enumerated() {
            let status = step.superseded ? "superseded" : step.error == nil ? "ok" : "failed"
            lines.append("step \(i + 1): \(step.summary) [\(status), \(String(format: "%.2f", step.seconds))s]")
        }
        for error in errors { lines.append("error: \(error.replacingOccurrences(of: "\n", with: "\n  "))") }
        return lines.joined(separator: "\n") + "\n"
    }
}
