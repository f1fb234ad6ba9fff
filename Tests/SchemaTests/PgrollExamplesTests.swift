import Foundation
import GRDB
import Logging
import Manifest
import Testing
@testable import Schema

/// pgroll's own example migrations, read unchanged from a folder outside the project (`TEAL_PGROLL_EXAMPLES`, the
/// `examples/` folder of a pgroll checkout; skipped without it). Each file, renamed `00NN_name.yaml`, must either
/// run start/complete and start/rollback/start/complete with the database sound, or be refused at validate saying
/// what needs PostgreSQL. The outcome of every file is printed, and compared with the recorded one.
@Suite struct PgrollExamplesTests {
    static let folder = ProcessInfo.processInfo.environment["TEAL_PGROLL_EXAMPLES"]

    enum Outcome: Equatable, CustomStringConvertible {
        case ran
        case refused(String)
        case failed(String)

        var description: String {
            switch self {
            case .ran: "ran"
            case .refused(let why): "refused: \(why)"
            case .failed(let why): "FAILED: \(why)"
            }
        }
    }

    /// Files that fail otherwise, and why (each is a known gap, see README).
    static let knownFailures: [String: String] = [
        // Its `down` names a column, event_name, that no table has; pgroll compiles `down` only when a new-shape
        // write needs it, so it starts there. teal's validate reports it at the file's line 15.
        "0035_alter_column_multiple.yaml": "no such column: event_name",
    ]

    @Test(.enabled(if: folder != nil, "set TEAL_PGROLL_EXAMPLES to pgroll's examples/ folder"))
    func pgrollsExamplesRunOrAreRefused() throws {
        let dir = URL(fileURLWithPath: Self.folder ?? "")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".json") }.sorted()
        let s = try Scratch()
        var logger = Logger(label: "examples")
        logger.logLevel = .critical
        let engine = try SchemaEngine(path: s.path, options: SchemaEngineOptions(batchSize: 100, batchPause: 0), logger: logger)
        var applied: [Migration] = []
        var outcomes: [(String, Outcome)] = []
        for file in files {
            let name = String(format: "%04d", Int(file.prefix { $0.isNumber }) ?? 0) + String(file.drop { $0.isNumber })
            let bytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent(file)))
            let m: Migration
            switch MigrationParser.parse(bytes, fileName: name, path: "schema/\(name)", checksum: name) {
            case .success(let parsed): m = parsed
            case .failure(let errors): outcomes.append((name, .failed("parse: \(errors)"))); continue
            }
            // What validate refuses without a database; the rest of validate's dry-run is the real start below,
            // on a database built from the files before (the full check, rebuilt for every file, would be slower).
            let refusals = SQLiteDialect().unsupported(in: m)
            if !refusals.isEmpty {
                let text = MigrationValidation.check([m]).map(\.description).joined(separator: "; ")
                outcomes.append((name, refusals.allSatisfy { $0.message.contains("PostgreSQL") } ? .refused(text) : .failed("validate: \(text)")))
                continue
            }
            do { try engine.validate(m) } catch {
                outcomes.append((name, .failed("validate: \(error)")))
                continue
            }
            do {
                let before = try s.schema()
                try engine.start(m)
                try readEverything(s)
                try engine.rollback(m.name)
                guard try s.schema() == before else { outcomes.append((name, .failed("rollback changed sqlite_schema"))); try engine.start(m); try engine.complete(m.name); applied.append(m); continue }
                try engine.start(m)
                try readEverything(s)
                try engine.complete(m.name)
                guard try s.integrity() == "ok" else { outcomes.append((name, .failed("integrity: \(try s.integrity() ?? "")"))); continue }
                applied.append(m)
                outcomes.append((name, .ran))
            } catch {
                outcomes.append((name, .failed("\(error)")))
                try? engine.rollback(m.name)
            }
        }
        let ran = outcomes.filter { $0.1 == .ran }.count
        let refused = outcomes.filter { if case .refused = $0.1 { true } else { false } }.count
        let failed = outcomes.filter { if case .failed = $0.1 { true } else { false } }
        print("pgroll examples: \(outcomes.count) files, \(ran) ran start/complete and start/rollback/start/complete, \(refused) refused at validate as needing PostgreSQL, \(failed.count) failed otherwise")
        for (name, outcome) in outcomes { print("  \(name): \(outcome)") }
        #expect(outcomes.count == files.count)
        #expect(failed.map(\.0) == Self.knownFailures.keys.sorted(), "files failing otherwise: \(failed.map { "\($0.0): \($0.1)" })")
        for (name, outcome) in failed { #expect(outcome.description.contains(Self.knownFailures[name] ?? "?"), "\(name): \(outcome)") }
    }

    /// Every table and view of the database reads.
    func readEverything(_ s: Scratch) throws {
        let names = try s.app.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'") }
        for name in names { _ = try s.rows("SELECT * FROM \(Identifiers.quote(name)) LIMIT 1") }
        #expect(try s.integrity() == "ok")
    }
}
