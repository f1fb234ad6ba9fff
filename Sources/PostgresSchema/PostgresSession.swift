import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Schema

/// One direct connection to the app database, for teal's own work: statements one at a time (the extended
/// protocol), transactions, DDL under a lock timeout with retries, and errors turned into `SchemaError`s that
/// carry the server's message and SQLSTATE, never the password.
final class PostgresSession: @unchecked Sendable {
    let settings: PostgresSettings
    let connection: PostgresConnection
    let logger: Logger
    private static let ids = IDGenerator()

    private init(settings: PostgresSettings, connection: PostgresConnection, logger: Logger) {
        self.settings = settings
        self.connection = connection
        self.logger = logger
    }

    /// Connects; a refused connection, a timeout or a rejected login is a transient `SchemaError` naming the host.
    static func open(_ settings: PostgresSettings, logger: Logger, applicationName: String = "teal",
                     connectTimeout: TimeAmount = .seconds(10)) async throws -> PostgresSession {
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch settings.sslMode {
            case "disable": tls = .disable
            case "allow", "prefer":
                var c = TLSConfiguration.makeClientConfiguration()
                c.certificateVerification = .none
                tls = try .prefer(NIOSSLContext(configuration: c))
            case "require":
                var c = TLSConfiguration.makeClientConfiguration()
                c.certificateVerification = .none
                tls = try .require(NIOSSLContext(configuration: c))
            default:
                var c = TLSConfiguration.makeClientConfiguration()
                c.certificateVerification = settings.sslMode == "verify-full" ? .fullVerification : .noHostnameVerification
                if let ca = settings.sslRootCert { c.trustRoots = .file(ca) }
                tls = try .require(NIOSSLContext(configuration: c))
            }
        } catch {
            throw SchemaError("cannot set up TLS for \(settings): \(error)")
        }
        var configuration = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                             password: settings.password, database: settings.database, tls: tls)
        configuration.options.connectTimeout = connectTimeout
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        let startup = configuration
        do {
            let id = ids.next()
            // connectTimeout bounds the TCP connect; the login after it is bounded here, so a server that goes away
            // half-way through the startup exchange cannot hold the caller.
            let started = ContinuousClock.now
            let limit = Duration.nanoseconds(connectTimeout.nanoseconds) + .seconds(10)
            let connection = try await StuckAwait.run(strikes: 1, stuck: { started.duration(to: .now) > limit }, giveUp: {
                logger.warning("no answer within \(limit) of connecting; given up on it")
                return SchemaError("no answer from \(settings) within \(limit) of connecting")
            }) {
                let connection = try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(),
                                                                      configuration: startup, id: id, logger: logger).get()
                if Task.isCancelled {
                    // Given up on meanwhile: nobody will use it.
                    _ = try? await (connection.close() as EventLoopFuture<Void>).get()
                    throw CancellationError()
                }
                return connection
            }
            return PostgresSession(settings: settings, connection: connection, logger: logger)
        } catch {
            var e = SchemaError("cannot connect to \(settings) (password from \(settings.passwordSource)): \(Self.message(of: error))")
            e.isTransient = true
            throw e
        }
    }

    /// Closes the connection without waiting on a server that may be gone (a restart, a cut network).
    func close() async {
        guard !connection.isClosed else { return }
        let connection = connection
        let closing: EventLoopFuture<Void> = connection.close()
        // The connection must outlive its closing (it may not be released open); the future holds it until then.
        closing.whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// Runs one statement.
    func exec(_ sql: String, _ binds: [String?] = []) async throws {
        _ = try await rows(sql, binds)
    }

    /// Runs one statement and returns its rows, every column read as text (cast in the SQL when it is not).
    func rows(_ sql: String, _ binds: [String?] = []) async throws -> [[String?]] {
        var bindings = PostgresBindings()
        for b in binds {
            if let b { bindings.append(b) } else { bindings.appendNull() }
        }
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        let connection = connection, logger = logger, settings = settings
        do {
            // A statement whose connection has closed under it gets its answer now, not never.
            return try await StuckAwait.run(stuck: { connection.isClosed }, giveUp: {
                logger.warning("the connection closed under a statement that got no answer; given up on it")
                var e = SchemaError("the connection to \(settings) closed before the statement was answered")
                e.isTransient = true
                e.statement = sql
                return e
            }) {
                let sequence = try await connection.query(query, logger: logger)
                var out: [[String?]] = []
                for try await row in sequence {
                    out.append(try row.map { cell in try cell.decode(String?.self) })
                }
                return out
            }
        } catch {
            throw Self.schemaError(error, statement: sql)
        }
    }

    func value(_ sql: String, _ binds: [String?] = []) async throws -> String? {
        try await rows(sql, binds).first?.first ?? nil
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    func transaction<T>(_ body: () async throws -> T) async throws -> T {
        try await exec("BEGIN")
        do {
            let value = try await body()
            try await exec("COMMIT")
            return value
        } catch {
            // A connection the server ended has no transaction left to roll back; asking on it could wait forever.
            if !connection.isClosed, !((error as? SchemaError)?.connectionLost ?? false) { try? await exec("ROLLBACK") }
            throw error
        }
    }

    /// A transaction that takes locks (DDL on `table`): `lock_timeout` and `statement_timeout` are set for it, and
    /// a lock timeout is retried with jittered, growing pauses up to `attempts` times. When every attempt timed
    /// out the error names who holds locks on the table (pid, how long, what it runs), and is transient.
    /// Each committed transaction is logged at debug level with `label`, its table and how long it took (the
    /// lock is held from its first locking statement to its commit), so a writer's slow statement can be placed.
    func ddl<T>(on table: String?, options: PostgresSchemaOptions, label: String = "ddl", _ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            let began = ContinuousClock.now
            do {
                let value = try await transaction {
                    try await exec("""
                        SELECT set_config('lock_timeout', '\(Int(options.lockTimeout * 1000))ms', true),
                               set_config('statement_timeout', '\(Int(options.statementTimeout * 1000))ms', true)
                        """)
                    return try await body()
                }
                logger.debug("ddl committed", metadata: ["phase": "\(label)", "table": "\(table ?? "-")", "attempt": "\(attempt)",
                                                         "ms": "\(Self.milliseconds(since: began))"])
                return value
            } catch let error as SchemaError where error.sqlState == "55P03" {
                if attempt < options.lockAttempts {
                    let pause = min(5.0, 0.05 * pow(2, Double(attempt))) * Double.random(in: 0.5...1.0)
                    logger.info("lock timeout, retrying", metadata: ["phase": "\(label)", "table": "\(table ?? "?")", "attempt": "\(attempt)",
                                                                     "ms": "\(Self.milliseconds(since: began))"])
                    try await Task.sleep(nanoseconds: UInt64(pause * 1e9))
                    continue
                }
                var e = SchemaError("\(error.message); after \(attempt) attempts, each waiting lock_timeout \(PostgresSchemaEngine.describe(options.lockTimeout))\(try await lockHolders(table))")
                e.isTransient = true
                e.sqlState = error.sqlState
                throw e
            }
        }
    }

    /// Milliseconds from `instant` to now, as text with one decimal.
    static func milliseconds(since instant: ContinuousClock.Instant) -> String {
        let d = instant.duration(to: .now).components
        return String(format: "%.1f", Double(d.seconds) * 1000 + Double(d.attoseconds) / 1e15)
    }

    /// Who else holds a lock on `table`, as words for an error: each holder's pid, state, how long its
    /// transaction has been open and its query with the constants taken out (`SQLRedaction`).
    private func lockHolders(_ table: String?) async throws -> String {
        guard let table else { return "" }
        let rows = try? await self.rows("""
            SELECT a.pid::text, coalesce(a.state, ''), coalesce(extract(epoch FROM now() - a.xact_start)::int::text, '?'), coalesce(a.query, '')
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.relation = to_regclass($1) AND l.granted AND l.pid <> pg_backend_pid()
            """, [table])
        guard let rows, !rows.isEmpty else { return "" }
        let who = rows.map { "pid \($0[0] ?? "?") (\($0[1] ?? ""), transaction open \($0[2] ?? "?") s): \(SQLRedaction.redact($0[3] ?? ""))" }
        return "; \(table) is held by " + Array(Set(who)).sorted().joined(separator: "; ")
    }

    // MARK: errors

    static func message(of error: any Error) -> String {
        if let e = error as? PSQLError {
            if let info = e.serverInfo {
                var text = info[.message] ?? "server error"
                if let state = info[.sqlState] { text += " (SQLSTATE \(state))" }
                if let detail = info[.detail] { text += ": \(detail)" }
                if let hint = info[.hint] { text += "; hint: \(hint)" }
                return text
            }
            if let underlying = e.underlying { return "\(e.code): \(underlying)" }
            return "\(e.code)"
        }
        if let e = error as? SchemaError { return e.message }
        return "\(error)"
    }

    static func schemaError(_ error: any Error, statement: String) -> SchemaError {
        if let e = error as? SchemaError { return e }
        var e = SchemaError(message(of: error))
        if let p = error as? PSQLError {
            let state = p.serverInfo?[.sqlState]
            e.sqlState = state
            e.statement = statement
            if let state {
                // Connection trouble, a server shutting down or starting, serialization failures, deadlocks,
                // lock timeouts: the same statement may well succeed later.
                e.isTransient = state.hasPrefix("08") || state.hasPrefix("57P") || state == "40001" || state == "40P01"
                    || state == "55P03" || state == "53300"
            } else {
                e.isTransient = true // no answer from the server: the connection itself failed
            }
        }
        return e
    }
}

extension SchemaError {
    /// The server ended the session or the connection broke (SQLSTATE class 08, 57P01–57P03, or no answer at all).
    var connectionLost: Bool {
        guard isTransient, statement != nil else { return false }
        guard let state = sqlState else { return true }
        return state.hasPrefix("08") || state.hasPrefix("57P")
    }
}

private final class IDGenerator: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}
