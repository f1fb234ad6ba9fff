import Foundation
import Manifest
import Testing
import TestSupport
@testable import PostgresSchema

/// The operation cases shared with SQLite (`sharedOperationCases`), through the PostgreSQL harness: each shape
/// is its release's connection (the version schema on the search_path, the shape setting).
struct PGShapes: ShapeAccess {
    let scratch: PGScratch

    func exec(_ sql: String, in shape: ReleaseShape) throws { try scratch.sql(sql, as: shape == .old ? old : new) }

    func rows(_ sql: String, in shape: ReleaseShape) throws -> [String] { try scratch.rows(sql, as: shape == .old ? old : new) }

    func indexExists(_ name: String) throws -> Bool {
        try scratch.rows("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname = '\(name.replacingOccurrences(of: "'", with: "''"))'") == ["1"]
    }
}

@Suite("PostgreSQL: the operation cases shared with SQLite", .serialized)
struct SharedCasesOnPostgresTests {
    static func check(_ checks: [ShapeCheck], _ s: PGScratch, _ phase: String, _ c: SharedOperationCase) {
        for failure in SharedOperationCase.run(checks, on: PGShapes(scratch: s), phase: phase, case: c.name) {
            Issue.record(Comment(rawValue: failure))
        }
    }

    @Test(arguments: sharedOperationCases)
    func operation(_ c: SharedOperationCase) async throws {
        guard postgresAvailable() else { return }
        try await PGHarness.run(PGCase(
            name: c.name, setup: c.setup.joined(separator: "; "), migration: c.migration,
            started: { Self.check(c.started, $0, "started", c) },
            rolledBack: { Self.check(c.rolledBack, $0, "rolled back", c) },
            restarted: { Self.check(c.restarted, $0, "started again", c) },
            completed: { Self.check(c.completed, $0, "completed", c) }))
    }
}
