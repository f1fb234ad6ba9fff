import Foundation
import GRDB
import Manifest
import Testing
import TestSupport
@testable import Schema

/// The operation cases shared with PostgreSQL (`sharedOperationCases`), through the SQLite harness.
struct SQLiteShapes: ShapeAccess {
    let scratch: Scratch

    // One namespace: both releases use the same tables; each reads and writes the columns it knows.
    func exec(_ sql: String, in shape: ReleaseShape) throws { try scratch.exec(sql) }

    func rows(_ sql: String, in shape: ReleaseShape) throws -> [String] {
        try scratch.rows(sql).map { $0.map { $0 ?? "NULL" }.joined(separator: "|") }
    }

    func indexExists(_ name: String) throws -> Bool {
        try scratch.app.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?", arguments: [name]) } == 1
    }
}

@Suite struct SharedCasesOnSQLiteTests {
    static func migration(_ c: SharedOperationCase) throws -> Migration {
        let name = "0002_shared"
        switch MigrationParser.parse(Array(c.migration.utf8), fileName: "\(name).yaml", path: "apps/shop/schema/\(name).yaml", checksum: "c-\(c.name)") {
        case .success(let m): return m
        case .failure(let e): throw e
        }
    }

    static func check(_ checks: [ShapeCheck], _ s: Scratch, _ phase: String, _ c: SharedOperationCase) {
        for failure in SharedOperationCase.run(checks, on: SQLiteShapes(scratch: s), phase: phase, case: c.name) {
            Issue.record(Comment(rawValue: failure))
        }
    }

    @Test(arguments: sharedOperationCases)
    func operation(_ c: SharedOperationCase) throws {
        let m = try Self.migration(c)
        let setup = c.setup.map { $0 + ";" }.joined(separator: "\n")
        if let refusal = c.refusedOnSQLite {
            let s = try Scratch(setup)
            let error = #expect(throws: SchemaError.self) { try s.engine().start(m) }
            #expect(error?.description.contains(refusal) == true, "\(String(describing: error))")
            return
        }
        let key = String(c.name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
        try OperationHarness.run(OperationCase(
            name: key, setup: setup, operations: m.operations,
            started: { Self.check(c.started, $0, "started", c) },
            rolledBack: { Self.check(c.rolledBack, $0, "rolled back", c) },
            restarted: { Self.check(c.restarted, $0, "started again", c) },
            completed: { Self.check(c.completed, $0, "completed", c) }))
    }

    @Test func everyOperationKindHasASharedCase() {
        let covered = Set(sharedOperationCases.flatMap(\.kinds))
        #expect(Set(Manifest.Operation.kinds).subtracting(covered).isEmpty, "no shared case: \(Set(Manifest.Operation.kinds).subtracting(covered).sorted())")
    }
}
