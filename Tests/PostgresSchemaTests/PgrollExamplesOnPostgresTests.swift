import Foundation
import Manifest
import Testing
import TestSupport
@testable import PostgresSchema
@testable import Schema

/// pgroll's own example migrations, read unchanged from a folder outside the project (`TEAL_PGROLL_EXAMPLES`,
/// the `examples/` folder of a pgroll checkout; skipped without it), run in order on one PostgreSQL database:
/// each through start, a read of every view of its version schema, rollback (the app schema as before), start
/// again and complete. Every file's outcome is printed; those not listed as known gaps must run.
@Suite struct PgrollExamplesOnPostgresTests {
    static let folder = ProcessInfo.processInfo.environment["TEAL_PGROLL_EXAMPLES"]

    /// Files that fail, and why (each a known gap, see README).
    static let knownFailures: [String: String] = [:]

    @Test(.enabled(if: folder != nil, "set TEAL_PGROLL_EXAMPLES to pgroll's examples/ folder"))
    func pgrollsExamplesRunOnPostgres() async throws {
        guard postgresAvailable() else { return }
        let dir = URL(fileURLWithPath: Self.folder ?? "")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".json") }.sorted()
        let s = try PGScratch(batchSize: 100)
        var outcomes: [(String, String)] = []
        for file in files {
            let name = String(format: "%04d", Int(file.prefix { $0.isNumber }) ?? 0) + String(file.drop { $0.isNumber })
            let bytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent(file)))
            let m: Migration
            switch MigrationParser.parse(bytes, fileName: name, path: "schema/\(name)", checksum: name) {
            case .success(let parsed): m = parsed
            case .failure(let errors): outcomes.append((name, "FAILED parse: \(errors)")); continue
            }
            // A raw `sql` without `down` cannot be undone (pgroll's rollback does nothing for it): start and complete only.
            let undoable = !m.operations.contains { if case .sql(let o) = $0 { o.down == nil && !o.onComplete } else { false } }
            if !undoable {
                do {
                    try await s.engine.start(m)
                    try readEverything(s, m.name)
                    try await s.engine.complete(m.name)
                    outcomes.append((name, "ran"))
                } catch { outcomes.append((name, "FAILED \(error)")) }
                continue
            }
            do {
                let before = try PGHarness.shape(s)
                try await s.engine.start(m)
                try readEverything(s, m.name)
                try await s.engine.rollback(m.name)
                let after = try PGHarness.shape(s)
                if after != before {
                    outcomes.append((name, "FAILED rollback changed the schema: +\(after.filter { !before.contains($0) }) -\(before.filter { !after.contains($0) })"))
                    try await s.engine.start(m)
                    try await s.engine.complete(m.name)
                    continue
                }
                try await s.engine.start(m)
                try readEverything(s, m.name)
                try await s.engine.complete(m.name)
                try readEverything(s, m.name)
                outcomes.append((name, "ran"))
            } catch {
                outcomes.append((name, "FAILED \(error)"))
                try? await s.engine.rollback(m.name)
            }
        }
        for (name, outcome) in outcomes { print("pgroll example \(name): \(outcome)") }
        let ran = outcomes.filter { $0.1 == "ran" }.count
        print("pgroll examples on PostgreSQL: \(ran) of \(outcomes.count) ran")
        for (name, outcome) in outcomes where outcome != "ran" {
            let file = name
            if let known = Self.knownFailures[file] {
                #expect(outcome.contains(known), "\(name): \(outcome)")
            } else {
                Issue.record("\(name): \(outcome)")
            }
        }
    }

    /// Every view of the migration's version schema answers a SELECT.
    func readEverything(_ s: PGScratch, _ migration: String) throws {
        let schema = s.engine.versionSchema(for: migration)
        for view in try s.rows("SELECT table_name FROM information_schema.views WHERE table_schema = '\(schema)'") {
            _ = try s.sql("SELECT * FROM \"\(view)\" LIMIT 1", as: migration)
        }
    }
}
