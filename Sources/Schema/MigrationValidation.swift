import Foundation
import Logging
import Manifest

/// What `teal validate` (and the agent, when it loads a commit) checks about an app's migrations before any of
/// them runs against the real database.
public enum MigrationValidation {
    /// Checks `migrations` (one app's, in order) for `dialect`:
    /// 1. constructs the dialect cannot express are refused at their `path:line`, saying what needs PostgreSQL;
    /// 2. every migration is dry-run against an in-memory database built from the ones before it (start, then
    ///    rollback and start again when it can be undone, then complete), so a bad `up`/`down`/`check`/`sql`, an
    ///    unknown column or a failing statement is reported at its `path:line` with the database's message.
    /// The dry-run stops at the first migration that fails (the later ones have nothing sound to build on).
    /// Returns no diagnostic when everything passes.
    public static func check(_ migrations: [Migration], dialect: any SchemaDialect = SQLiteDialect()) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        var refusedAny = false
        for m in migrations {
            for u in dialect.unsupported(in: m) {
                diagnostics.append(diagnostic(m, index: u.operationIndex, field: u.field, u.message))
                refusedAny = true
            }
        }
        guard !refusedAny, dialect is SQLiteDialect else { return diagnostics }
        let engine: SchemaEngine
        do {
            var logger = Logger(label: "teal.schema.validate")
            logger.logLevel = .critical
            engine = try SchemaEngine(path: ":memory:", options: SchemaEngineOptions(batchSize: 1000, batchPause: 0), logger: logger, dialect: dialect)
        } catch {
            return [Diagnostic(path: migrations.first?.source?.path ?? "schema", message: "cannot open an in-memory database to check the migrations: \(error)")]
        }
        for m in migrations {
            do {
                try engine.start(m)
                if isReversible(m) {
                    try engine.rollback(m.name)
                    try engine.start(m)
                }
                try engine.complete(m.name)
            } catch {
                let e = error as? SchemaError ?? SchemaError("\(error)")
                diagnostics.append(diagnostic(m, index: e.operationIndex, field: e.operationIndex.flatMap { field(of: m, index: $0, in: e.message) },
                                              e.operationIndex.map { "operations[\($0)] (\(m.operations[$0].kind)): \(e.message)" } ?? e.message))
                break
            }
        }
        return diagnostics
    }

    /// A migration whose raw SQL has no `down` cannot be started twice on the same database.
    static func isReversible(_ m: Migration) -> Bool {
        !m.operations.contains { if case .sql(let s) = $0 { s.down == nil && !s.onComplete } else { false } }
    }

    static func diagnostic(_ m: Migration, index: Int?, field: String?, _ message: String) -> Diagnostic {
        let path = m.source?.path ?? m.name
        let line = m.source?.line(operation: index, field: field) ?? 1
        let prefix = index.map { "operations[\($0)] (\(m.operations[$0].kind))" } ?? ""
        let text = message.hasPrefix("operations[") || prefix.isEmpty ? message : "\(prefix)\(field.map { ".\($0)" } ?? ""): \(message)"
        return Diagnostic(path: path, line: line, message: text)
    }

    /// The field of operation `index` whose text the error message quotes, if any (the bad expression).
    static func field(of m: Migration, index: Int, in message: String) -> String? {
        guard index < m.operations.count, let data = try? JSONEncoder().encode(m.operations[index]),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let body = object.values.first else { return nil }
        var best: (path: String, length: Int)?
        func walk(_ value: Any, _ path: String) {
            if let text = value as? String, text.count >= 2, message.contains(text), text.count > (best?.length ?? 0) {
                best = (path, text.count)
            } else if let map = value as? [String: Any] {
                for (k, v) in map { walk(v, path.isEmpty ? k : "\(path).\(k)") }
            } else if let list = value as? [Any] {
                for (i, v) in list.enumerated() { walk(v, "\(path)[\(i)]") }
            }
        }
        walk(body, "")
        return best?.path
    }
}
