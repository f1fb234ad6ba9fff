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
    /// Which agent wrote the record (`host:data-dir`), so that several agents following one repository each keep
    /// their own record in a commit's note; nil leaves the `agent:` line out.
    public var agent: String?
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
        if let agent { lines.append("agent: \(agent)") }
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

/// A commit's note when several agents follow one repository: one record per agent, each starting at its
/// `outcome:` line, separated by a blank line. An agent writing a commit's note again replaces its own record and
/// keeps everyone else's, in the order they were first written; a record from another agent is never changed.
public enum AuditNote {
    /// The records of a note, each from its `outcome:` line to the next one (without the blank line between).
    public static func records(_ note: String) -> [String] {
        var records: [[Substring]] = []
        for line in note.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("outcome:") || records.isEmpty { records.append([]) }
            records[records.count - 1].append(line)
        }
        return records.map { lines in
            var lines = lines
            while let last = lines.last, last.trimmingCharacters(in: .whitespaces).isEmpty { lines.removeLast() }
            return lines.joined(separator: "\n") + "\n"
        }.filter { $0 != "\n" }
    }

    /// The value of a record's `key:` line.
    static func field(_ key: String, of record: String) -> String? {
        record.split(separator: "\n").first { $0.hasPrefix("\(key): ") }.map { String($0.dropFirst(key.count + 2)) }
    }

    /// Whether `existing` was written by the agent that wrote `record`: the same `agent:` line, or, for a record
    /// from before agents named themselves, no `agent:` line and the same `host:`.
    static func sameWriter(_ existing: String, _ record: String) -> Bool {
        switch (field("agent", of: existing), field("agent", of: record)) {
        case let (a?, b?): return a == b
        case (nil, _): return field("host", of: existing) == field("host", of: record)
        case (_?, nil): return false
        }
    }

    /// `note` (the commit's note as it is, nil for none) with each record of `text` in place of the one its writer
    /// wrote before, or after the others when its writer has none there yet.
    public static func merging(_ text: String, into note: String?) -> String {
        var merged = note.map(records) ?? []
        for record in records(text) {
            if let index = merged.firstIndex(where: { sameWriter($0, record) }) {
                merged[index] = record
            } else {
                merged.append(record)
            }
        }
        return merged.joined(separator: "\n")
    }

    /// Whether `note` holds a record by the writer of `record`.
    public static func hasRecord(in note: String, writtenAs record: String) -> Bool {
        records(note).contains { sameWriter($0, record) }
    }

    /// The outcomes a note records, one per record, in order.
    public static func outcomes(_ note: String) -> [String] {
        records(note).compactMap { field("outcome", of: $0)?.trimmingCharacters(in: .whitespaces) }
    }
}
