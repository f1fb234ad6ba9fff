import ArgumentParser
import Foundation
import Git
import Logging
import Manifest
import PostgresSchema
import Schema

/// `teal schema status|start|complete|rollback|reopen`: the schema engine on its own.
struct SchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Run expand/contract migrations on an app database directly.",
        subcommands: [Status.self, Start.self, Complete.self, Rollback.self, Reopen.self]
    )

    struct Options: ParsableArguments {
        @Option(help: "sqlite:///ABS/PATH, sqlite:RELATIVE (under --data-dir) or postgres://USER@HOST:PORT/DB (password from PGPASSWORD or a password file).")
        var database: String?

        @Option(help: "An app's environment.yaml: its database and database settings (lock_timeout, statement_timeout, retention), as the agent uses them; --dir then defaults to the schema/ folder beside it.")
        var environment: String?

        @Option(help: "Folder of NNNN_name.yaml (or pgroll's NNNN_name.json) migration files.")
        var dir: String?

        /// `--data-dir`, for relative SQLite paths: the agent's unless given, so `sqlite:RELATIVE` names the agent's file.
        @OptionGroup var dataDir: DataDirOption

        @Option(name: .customLong("batch-size"), help: "Rows per backfill transaction.")
        var batchSize: Int = 1000

        @Option(name: .customLong("lock-timeout"), help: "PostgreSQL: how long each DDL transaction waits for a table lock (500ms, 2s; default 1s or environment.yaml's).")
        var lockTimeout: String?

        @Option(name: .customLong("statement-timeout"), help: "PostgreSQL: longest any statement may run (default 60s or environment.yaml's).")
        var statementTimeout: String?

        @Option(help: "PostgreSQL: how long what complete puts aside is kept (default 7d or environment.yaml's).")
        var retention: String?

        /// The database and its settings: environment.yaml's when `--environment` names one, with what the
        /// command line says on top.
        func resolved() throws -> (DatabaseLocation, DatabaseOptions) {
            var location: DatabaseLocation?
            var settings = DatabaseOptions()
            if let environment {
                guard let data = FileManager.default.contents(atPath: environment) else { throw SchemaError("cannot read \(environment)") }
                let app = URL(fileURLWithPath: environment).deletingLastPathComponent().lastPathComponent
                switch DesiredStateLoader.environment(bytes: [UInt8](data), path: environment, app: app) {
                case .success(let manifest):
                    location = manifest.database
                    settings = manifest.databaseOptions
                case .failure(let errors): throw SchemaError(errors.description)
                }
            }
            if let database {
                switch DatabaseLocation.parse(database) {
                case .success(let parsed): location = parsed
                case .failure(let error): throw SchemaError("--database: \(error.message)")
                }
            }
            guard let location else { throw SchemaError("--database or --environment is required: which database to migrate") }
            let given: [(String, String?, WritableKeyPath<DatabaseOptions, Duration>)] = [
                ("--lock-timeout", lockTimeout, \.lockTimeout), ("--statement-timeout", statementTimeout, \.statementTimeout),
                ("--retention", retention, \.retention)]
            for (flag, text, setting) in given {
                guard let text else { continue }
                guard location.isPostgres else { throw SchemaError("\(flag) applies to postgres:// databases only") }
                guard let d = DurationParser.parse(text), d > .zero else {
                    throw SchemaError("\(flag): '\(text)' is not a duration greater than zero (500ms, 2s, 1m, 7d)")
                }
                if flag != "--retention", d > .milliseconds(Int64(Int32.max)) {
                    throw SchemaError("\(flag) must be at most 2147483647ms (about 24 days), PostgreSQL's limit")
                }
                settings[keyPath: setting] = d
            }
            return (location, settings)
        }

        /// `mustExist`: a command that only reads never creates the database.
        func engine(mustExist: Bool = false) throws -> CommandEngine {
            let path: String
            let (location, settings) = try resolved()
            switch location {
            case .postgres(let url):
                let connection: PostgresSettings
                do { connection = try PostgresSettings(url: url) } catch let error as PostgresSettingsError { throw SchemaError(error.description) }
                var logger = Logger(label: "teal.schema.postgres")
                logger.logLevel = .info
                var options = PostgresSchemaOptions(settings)
                options.batchSize = max(1, batchSize)
                return .postgres(PostgresSchemaEngine(settings: connection, options: options, logger: logger))
            case .sqliteAbsolute(let p): path = p
            case .sqliteRelative(let p):
                path = URL(fileURLWithPath: dataDir.path).appendingPathComponent(p).path
            }
            if mustExist && !FileManager.default.fileExists(atPath: path) {
                throw SchemaError("no database at \(path)")
            }
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            var logger = Logger(label: "teal.schema")
            logger.logLevel = .info
            return .sqlite(try SchemaEngine(path: path, options: SchemaEngineOptions(batchSize: batchSize), logger: logger))
        }

        /// The migrations in `--dir` (or the schema/ folder beside `--environment`), in file-name order, each checksummed as git would hash the file.
        func migrations(required: Bool) throws -> [Migration] {
            let beside = environment.map { URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent("schema").path }
            guard let dir = dir ?? beside else {
                if required { throw SchemaError("--dir is required: the folder of NNNN_name.yaml migrations") }
                return []
            }
            if dir == beside, !FileManager.default.fileExists(atPath: dir) { return [] } // an app without migrations
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { name in MigrationParser.extensions.contains { name.hasSuffix($0) } }.sorted()
            } catch {
                throw SchemaError("cannot read migrations folder \(dir): \(error.localizedDescription)")
            }
            var result: [Migration] = []
            var problems: [String] = []
            for name in names {
                let path = (dir as NSString).appendingPathComponent(name)
                guard let data = FileManager.default.contents(atPath: path) else { problems.append("\(path): cannot read"); continue }
                let bytes = [UInt8](data)
                switch MigrationParser.parse(bytes, fileName: name, path: path, checksum: ObjectID.hashBlob(bytes).hex) {
                case .success(let m): result.append(m)
                case .failure(let errors): problems.append(errors.description)
                }
            }
            if !problems.isEmpty { throw SchemaError(problems.joined(separator: "\n")) }
            return result.sorted { ($0.number, $0.name) < ($1.number, $1.name) }
        }
    }

    static func fail(_ error: any Error) -> ExitCode {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        return ExitCode(1)
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show applied, in-flight and pending migrations.",
                                                        discussion: "Reads only: a database that does not exist is an error (exit 1), never created.")
        @OptionGroup var options: Options

        func run() async throws {
            do {
                let engine = try options.engine(mustExist: true)
                let files = try options.migrations(required: false)
                try await engine.verifyChecksums(files)
                let status = try await engine.status()
                let known = Set(status.migrations.map(\.name))
                for m in status.migrations {
                    var line = "\(m.name)  \(m.state.rawValue)"
                    if let at = m.completedAt { line += "  completed \(at.formatted(.iso8601))" } else { line += "  started \(m.startedAt.formatted(.iso8601))" }
                    print(line)
                }
                for m in files where !known.contains(m.name) { print("\(m.name)  pending") }
                if status.migrations.isEmpty && files.isEmpty { print("no migrations") }
            } catch { throw SchemaCommand.fail(error) }
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start the next migration (or resume an interrupted one).")
        @OptionGroup var options: Options

        func run() async throws {
            do {
                let engine = try options.engine()
                let files = try options.migrations(required: true)
                try await engine.verifyChecksums(files)
                let status = try await engine.status()
                let next: Migration
                if let flight = status.inFlight {
                    guard flight.state == .backfilling else {
                        throw SchemaError(migration: flight.name, "is already started; complete or roll it back before starting another")
                    }
                    next = files.first { $0.name == flight.name } ?? flight.definition
                } else {
                    let completed = Set(status.migrations.filter { $0.state.isCompleted }.map(\.name))
                    guard let pending = files.first(where: { !completed.contains($0.name) }) else {
                        print("nothing to start: every migration is completed")
                        return
                    }
                    next = pending
                }
                let bar = ProgressBar()
                try await engine.start(next) { done, total in bar.show(done: done, total: total) }
                bar.finish()
                print("started \(next.name)")
            } catch { throw SchemaCommand.fail(error) }
        }
    }

    struct Complete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Complete the migration in flight (drop the old shape), or one whose reopen was cut off (back to completed).")
        @OptionGroup var options: Options

        func run() async throws {
            do {
                let engine = try options.engine()
                try await engine.verifyChecksums(try options.migrations(required: false))
                let status = try await engine.status()
                let reopening = status.lastCompleted.flatMap { $0.state == .reopening ? $0 : nil }
                guard let flight = status.inFlight ?? reopening else { throw SchemaError("no migration is in flight") }
                try await engine.complete(flight.name)
                print("completed \(flight.name)")
            } catch { throw SchemaCommand.fail(error) }
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Roll back the migration in flight, from its stored definition.")
        @OptionGroup var options: Options

        func run() async throws {
            do {
                let engine = try options.engine()
                guard let flight = try await engine.status().inFlight else { throw SchemaError("no migration is in flight") }
                try await engine.rollback(flight.name)
                print("rolled back \(flight.name)")
            } catch { throw SchemaCommand.fail(error) }
        }
    }

    struct Reopen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Undo the last complete (PostgreSQL, within the retention window): its old shape comes back beside the new one.")
        @OptionGroup var options: Options

        func run() async throws {
            do {
                let engine = try options.engine()
                guard let last = try await engine.status().lastCompleted else { throw SchemaError("no migration is completed") }
                let bar = ProgressBar()
                try await engine.reopen(last.name) { done, total in bar.show(done: done, total: total) }
                bar.finish()
                print("reopened \(last.name)")
            } catch { throw SchemaCommand.fail(error) }
        }
    }
}

/// The engine `teal schema` drives, chosen from `--database`: SQLite's, or PostgreSQL's (its own connection per
/// call, holding the database's advisory lock, so it never runs beside an agent's migration).
enum CommandEngine: Sendable {
    case sqlite(SchemaEngine)
    case postgres(PostgresSchemaEngine)

    func status() async throws -> SchemaStatus {
        switch self {
        case .sqlite(let engine): try engine.status()
        case .postgres(let engine): try await engine.status()
        }
    }

    /// A migration file that changed after it was applied is refused: write a new migration instead.
    func verifyChecksums(_ migrations: [Migration]) async throws {
        switch self {
        case .sqlite(let engine): try engine.verifyChecksums(migrations)
        case .postgres:
            let applied = Dictionary(try await status().migrations.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for m in migrations {
                if let a = applied[m.name], a.state != .rolledBack, a.checksum != m.checksum {
                    throw SchemaError(migration: m.name, "the file changed after it was applied (stored checksum \(a.checksum), file \(m.checksum)); write a new migration instead")
                }
            }
        }
    }

    func start(_ migration: Migration, progress: @escaping @Sendable (Int, Int) -> Void) async throws {
        switch self {
        case .sqlite(let engine): try engine.start(migration, progress: progress)
        case .postgres(let engine): try await engine.start(migration, progress: progress)
        }
    }

    func complete(_ name: String) async throws {
        switch self {
        case .sqlite(let engine): try engine.complete(name)
        case .postgres(let engine): try await engine.complete(name)
        }
    }

    func rollback(_ name: String) async throws {
        switch self {
        case .sqlite(let engine): try engine.rollback(name)
        case .postgres(let engine): try await engine.rollback(name)
        }
    }

    func reopen(_ name: String, progress: @escaping @Sendable (Int, Int) -> Void) async throws {
        switch self {
        case .sqlite: throw SchemaError(migration: name, "SQLite's complete drops what the old shape had; it cannot be undone")
        case .postgres(let engine): try await engine.reopen(name, progress: progress)
        }
    }
}

/// A one-line progress bar on standard error, redrawn when the percentage changes.
final class ProgressBar: @unchecked Sendable {
    private var lastPercent = -1
    private var drawn = false

    func show(done: Int, total: Int) {
        guard total > 0 else { return }
        let percent = min(100, done * 100 / total)
        guard percent != lastPercent else { return }
        lastPercent = percent
        drawn = true
        let width = 30
        let filled = percent * width / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data("\rbackfill [\(bar)] \(percent)% \(done)/\(total) rows".utf8))
    }

    func finish() {
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
