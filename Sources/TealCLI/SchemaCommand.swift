import ArgumentParser
import Foundation
import Git
import Logging
import Manifest
import Schema

/// `teal schema status|start|complete|rollback`: the schema engine on its own.
struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Run expand/contract migrations on an app database directly.",
        subcommands: [Status.self, Start.self, Complete.self, Rollback.self]
    )

    struct Options: ParsableArguments {
        @Option(help: "sqlite:///ABS/PATH or sqlite:RELATIVE (under --data-dir).")
        var database: String

        @Option(help: "Folder of NNNN_name.yaml (or pgroll's NNNN_name.json) migration files.")
        var dir: String?

        @Option(name: .customLong("data-dir"), help: "teal's data directory, for relative SQLite paths.")
        var dataDir: String = ".teal"

        @Option(name: .customLong("batch-size"), help: "Rows per backfill transaction.")
        var batchSize: Int = 1000

        /// `mustExist`: a command that only reads never creates the database.
        func engine(mustExist: Bool = false) throws -> SchemaEngine {
            let path: String
            switch DatabaseLocation.parse(database) {
            case .failure(let error): throw SchemaError(error.message)
            case .success(.postgres(let url)):
                throw SchemaError("PostgreSQL (\(url)) is not supported by the schema engine yet; use an SQLite database")
            case .success(.sqliteAbsolute(let p)): path = p
            case .success(.sqliteRelative(let p)):
                path = URL(fileURLWithPath: dataDir).appendingPathComponent(p).path
            }
            if mustExist && !FileManager.default.fileExists(atPath: path) {
                throw SchemaError("no database at \(path)")
            }
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            var logger = Logger(label: "teal.schema")
            logger.logLevel = .info
            return try SchemaEngine(path: path, options: SchemaEngineOptions(batchSize: batchSize), logger: logger)
        }

        /// The migrations in `--dir`, in file-name order, each checksummed as git would hash the file.
        func migrations(required: Bool) throws -> [Migration] {
            guard let dir else {
                if required { throw SchemaError("--dir is required: the folder of NNNN_name.yaml migrations") }
                return []
            }
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

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show applied, in-flight and pending migrations.",
                                                        discussion: "Reads only: a database that does not exist is an error (exit 1), never created.")
        @OptionGroup var options: Options

        func run() throws {
            do {
                let engine = try options.engine(mustExist: true)
                let files = try options.migrations(required: false)
                try engine.verifyChecksums(files)
                let status = try engine.status()
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

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start the next migration (or resume an interrupted one).")
        @OptionGroup var options: Options

        func run() throws {
            do {
                let engine = try options.engine()
                let files = try options.migrations(required: true)
                try engine.verifyChecksums(files)
                let status = try engine.status()
                let next: Migration
                if let flight = status.inFlight {
                    guard flight.state == .backfilling else {
                        throw SchemaError(migration: flight.name, "is already started; complete or roll it back before starting another")
                    }
                    next = files.first { $0.name == flight.name } ?? flight.definition
                } else {
                    let completed = Set(status.migrations.filter { $0.state == .completed }.map(\.name))
                    guard let pending = files.first(where: { !completed.contains($0.name) }) else {
                        print("nothing to start: every migration is completed")
                        return
                    }
                    next = pending
                }
                let bar = ProgressBar()
                try engine.start(next) { done, total in bar.show(done: done, total: total) }
                bar.finish()
                print("started \(next.name)")
            } catch { throw SchemaCommand.fail(error) }
        }
    }

    struct Complete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Complete the migration in flight (drop the old shape).")
        @OptionGroup var options: Options

        func run() throws {
            do {
                let engine = try options.engine()
                try engine.verifyChecksums(try options.migrations(required: false))
                guard let flight = try engine.status().inFlight else { throw SchemaError("no migration is in flight") }
                try engine.complete(flight.name)
                print("completed \(flight.name)")
            } catch { throw SchemaCommand.fail(error) }
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Roll back the migration in flight, from its stored definition.")
        @OptionGroup var options: Options

        func run() throws {
            do {
                let engine = try options.engine()
                guard let flight = try engine.status().inFlight else { throw SchemaError("no migration is in flight") }
                try engine.rollback(flight.name)
                print("rolled back \(flight.name)")
            } catch { throw SchemaCommand.fail(error) }
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
