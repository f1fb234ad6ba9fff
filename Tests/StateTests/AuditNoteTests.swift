import Foundation
import Testing
@testable import State

/// How the records of several agents share one commit's note.
@Suite struct AuditNoteTests {
    func record(_ outcome: Outcome, agent: String?, host: String = "web-1", error: String? = nil) -> String {
        var audit = AuditRecord(commit: "c1", outcome: outcome, host: host, startedAt: Date(timeIntervalSince1970: 0),
                                finishedAt: Date(timeIntervalSince1970: 1))
        audit.agent = agent
        if let error { audit.errors = [error] }
        return audit.note
    }

    @Test func eachAgentKeepsItsOwnRecordAndReplacesOnlyThat() {
        let a = record(.applied, agent: "web-1:/var/lib/teal")
        let b = record(.failed, agent: "web-2:/var/lib/teal", host: "web-2", error: "start green: health check failed\nsecond line")
        let both = AuditNote.merging(b, into: a)
        #expect(both == a + "\n" + b)
        #expect(AuditNote.records(both) == [a, b])
        #expect(AuditNote.outcomes(both) == ["applied", "failed"])

        // A retried commit: web-2's record is replaced in place, web-1's left as it was.
        let retried = record(.applied, agent: "web-2:/var/lib/teal", host: "web-2")
        #expect(AuditNote.merging(retried, into: both) == a + "\n" + retried)
        // The same agent again: one record, never two.
        #expect(AuditNote.merging(a, into: a) == a)
        #expect(AuditNote.merging(a, into: nil) == a)
        // A crash loop line added to a record stays in it.
        #expect(AuditNote.merging(a + "crashloop: shop green restarted 5 times\n", into: both)
                == a + "crashloop: shop green restarted 5 times\n" + "\n" + b)
    }

    @Test func agentsOnOneHostAreToldApartByTheirDataDirAndOldRecordsByHost() {
        let first = record(.applied, agent: "web-1:/srv/a")
        let second = record(.applied, agent: "web-1:/srv/b")
        #expect(AuditNote.records(AuditNote.merging(second, into: first)).count == 2)
        #expect(AuditNote.hasRecord(in: first, writtenAs: first))
        #expect(!AuditNote.hasRecord(in: first, writtenAs: second))
        // A record from before agents named themselves belongs to the agent on its host.
        let old = record(.failed, agent: nil)
        #expect(AuditNote.merging(first, into: old) == first)
        #expect(AuditNote.merging(record(.applied, agent: "web-2:/srv/a", host: "web-2"), into: old).hasPrefix(old + "\n"))
    }
}
