import Foundation
import GRDB
import Manifest
import Testing
@testable import Schema

/// One table-driven case of the operation harness: an old shape with rows, a migration, and what must hold in
/// each phase. The runner adds what holds for every operation (see `OperationHarness.run`).
struct OperationCase: Sendable, CustomTestStringConvertible {
    var name: String
    /// SQL that builds the old shape and its rows.
    var setup: String
    var operations: [Manifest.Operation]
    /// After start: reads and writes in both shapes through a plain connection, constraint behaviour.
    var started: @Sendable (Scratch) throws -> Void
    /// After rollback: the old shape works, what was written in the new one is there in the old one.
    var rolledBack: @Sendable (Scratch) throws -> Void = { _ in }
    /// After the second start: what the rollback kept aside is back.
    var restarted: @Sendable (Scratch) throws -> Void = { _ in }
    /// After complete: only the new shape, with its constraints.
    var completed: @Sendable (Scratch) throws -> Void
    var batchSize = 2

    var testDescription: String { name }

    var definition: Migration { migration("0002_\(name)", operations) }
}

enum OperationHarness {
    /// start → checks → rollback → checks (the schema exactly as before, nothing of teal's left but kept-aside
    /// data) → start → checks → complete → checks (no trigger, view or twin column left, integrity and foreign
    /// keys sound).
    static func run(_ c: OperationCase) throws {
        let s = try Scratch(c.setup)
        let engine = try s.engine(batchSize: c.batchSize)
        let m = c.definition
        let schemaBefore = try s.schema()
        let machineryBefore = try s.machinery()

        try engine.start(m)
        #expect(try engine.status().inFlight?.state == .started, "\(c.name): started")
        try c.started(s)
        #expect(try s.integrity() == "ok", "\(c.name): integrity after start")

        try engine.rollback(m.name)
        #expect(try engine.status().migrations.last?.state == .rolledBack, "\(c.name): rolled back")
        let schemaAfter = try s.schema()
        #expect(schemaAfter == schemaBefore, "\(c.name): rollback leaves sqlite_schema as before start: \(schemaAfter.filter { !schemaBefore.contains($0) }) instead of \(schemaBefore.filter { !schemaAfter.contains($0) })")
        #expect(try s.machinery().filter { !$0.hasPrefix("_teal_kept_") } == machineryBefore, "\(c.name): nothing left behind but kept-aside data")
        #expect(try s.integrity() == "ok", "\(c.name): integrity after rollback")
        try c.rolledBack(s)

        try engine.start(m)
        #expect(try engine.status().inFlight?.state == .started, "\(c.name): started again")
        #expect(try s.machinery().filter { $0.hasPrefix("_teal_kept_") }.isEmpty, "\(c.name): kept-aside data restored")
        try c.restarted(s)

        try engine.complete(m.name)
        #expect(try engine.status().lastCompleted?.name == m.name, "\(c.name): completed")
        #expect(try s.machinery() == machineryBefore, "\(c.name): no trigger, view or helper left after complete")
        let twins = try s.app.read { db in
            try String.fetchAll(db, sql: """
                SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
                WHERE m.type = 'table' AND p.name LIKE '\\_teal\\_%' ESCAPE '\\'
                """)
        }
        #expect(twins.isEmpty, "\(c.name): no twin column left")
        #expect(try s.integrity() == "ok", "\(c.name): integrity after complete")
        #expect(try s.rows("PRAGMA foreign_key_check").isEmpty, "\(c.name): foreign keys hold")
        try c.completed(s)
    }
}
