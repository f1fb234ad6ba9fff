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
    /// `block`: the statements `sql` runs as one DO block (see `block`), so that a failure names the one that failed.
    func rows(_ sql: String, _ binds: [String?] = [], block: [String]? = nil) async throws -> [[String?]] {
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
            throw Self.schemaError(error, statement: sql, block: block)
        }
    }

    /// One query of `rowsOfEach`: its select list (text expressions), the rest of it (`FROM ... WHERE ...`), the order
    /// of its rows if it matters, and its parameters ($1... of its own).
    struct Query {
        var columns: [String]
        var from: String
        var orderBy: String?
        var binds: [String?]
    }

    /// The rows of several queries in one round trip: each query's rows come back as one JSON array of arrays (in
    /// its `orderBy`), its parameters renumbered after the ones before it.
    func rowsOfEach(_ queries: [Query]) async throws -> [[[String?]]] {
        var binds: [String?] = []
        var parts: [String] = []
        for q in queries {
            let offset = binds.count
            func renumbered(_ sql: String) -> String {
                sql.replacing(/\$([0-9]+)/) { m in "$\(Int(m.output.1)! + offset)" }
            }
            let order = q.orderBy.map { " ORDER BY \($0)" } ?? ""
            parts.append("(SELECT coalesce(json_agg(json_build_array(\(q.columns.joined(separator: ", ")))\(order)), '[]')::text \(renumbered(q.from)))")
            binds += q.binds
        }
        let cells = try await rows("SELECT " + parts.joined(separator: ", "), binds).first ?? []
        guard cells.count == queries.count else { throw SchemaError("no answer to a catalog query") }
        return try cells.map { cell in
            guard let data = cell?.data(using: .utf8), let rows = try JSONSerialization.jsonObject(with: data) as? [[Any]] else {
                throw SchemaError("an unreadable answer to a catalog query: \(cell ?? "NULL")")
            }
            return rows.map { row in row.map { v in v is NSNull ? nil : (v as? String) ?? "\(v)" } }
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
        try await retryingLockTimeouts(on: table, options: options, label: label) {
            try await transaction {
                try await exec("""
                    SELECT set_config('lock_timeout', '\(Int(options.lockTimeout * 1000))ms', true),
                           set_config('statement_timeout', '\(Int(options.statementTimeout * 1000))ms', true)
                    """)
                return try await body()
            }
        }
    }

    /// `statements` as one DDL transaction like `ddl`'s, sent as one DO block (one round trip instead of one per
    /// statement and three more): the server runs it in a transaction of its own, and the block sets `lock_timeout`
    /// for it first. A setting changed inside a statement does not bound that statement, so the block is used only
    /// when the session's own `statement_timeout` (`statementTimeout`, set by the engine when it opens the session)
    /// is the one wanted; otherwise, or when the statements cannot be one block (`block`), it is `ddl`'s transaction.
    /// Only for statements teal writes: a user's SQL may hold what PL/pgSQL reads differently (a bare SELECT).
    func ddl(on table: String?, options: PostgresSchemaOptions, label: String = "ddl", statements: [String]) async throws {
        let lockTimeout = "PERFORM set_config('lock_timeout', '\(Int(options.lockTimeout * 1000))ms', true)"
        let all = [lockTimeout] + statements
        guard statementTimeout == options.statementTimeout, !statements.isEmpty, let block = Self.block(all) else {
            return try await ddl(on: table, options: options, label: label) { for sql in statements { try await exec(sql) } }
        }
        try await retryingLockTimeouts(on: table, options: options, label: label) { _ = try await rows(block, block: all) }
    }

    /// `statements` (teal's, see `ddl(on:options:label:statements:)`) one after the other, in one round trip when
    /// they can be one DO block (which the server runs as one transaction), else one by one: in the caller's
    /// transaction if any, or, when `atomically`, in a transaction of their own. No timeouts of their own.
    func execAll(_ statements: [String], atomically: Bool = false) async throws {
        guard let block = Self.block(statements) else {
            if atomically { return try await transaction { for sql in statements { try await exec(sql) } } }
            for sql in statements { try await exec(sql) }
            return
        }
        _ = try await rows(block, block: statements)
    }

    /// `statements` as one DO block, nil when a statement holds the block's quote.
    static func block(_ statements: [String]) -> String? {
        let quote = "$teal_block$"
        guard !statements.isEmpty, !statements.contains(where: { $0.contains(quote) }) else { return nil }
        return "DO \(quote) BEGIN\n" + statements.map { bare($0) + ";\n" }.joined() + "END \(quote)"
    }

    /// `sql` without the closing semicolon (and blanks) that would make an empty statement in a block, which
    /// PL/pgSQL refuses.
    static func bare(_ sql: String) -> String {
        var t = Substring(sql)
        while let last = t.last, last == ";" || last.isWhitespace { t = t.dropLast() }
        return String(t)
    }

    /// The `statement_timeout` the session has outside transactions that set their own (nil: the server's default).
    private(set) var statementTimeout: TimeInterval?

    /// Sets the session's `search_path` and `statement_timeout`, in one round trip.
    func configure(searchPath: String, statementTimeout: TimeInterval) async throws {
        try await exec("SELECT set_config('search_path', $1, false), set_config('statement_timeout', $2, false)",
                       [searchPath, "\(Int(statementTimeout * 1000))ms"])
        self.statementTimeout = statementTimeout
    }

    /// Runs `body` (one DDL transaction) again after a lock timeout, with jittered, growing pauses, up to
    /// `lockAttempts` times; logs each commit.
    private func retryingLockTimeouts<T>(on table: String?, options: PostgresSchemaOptions, label: String, _ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            let began = ContinuousClock.now
            do {
                let value = try await body()
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

    /// Which of `statements`, run as one `block`, a failure's context (`PL/pgSQL function inline_code_block line N
    /// ...`) points at: line 1 is the block's `BEGIN`, its statements follow one after the other.
    static func blockStatement(_ statements: [String], context: String?) -> String? {
        guard let context, let range = context.range(of: "inline_code_block line "),
              let line = Int(context[range.upperBound...].prefix(while: \.isNumber)), line >= 2 else { return nil }
        var first = 2
        for statement in statements {
            let lines = bare(statement).split(separator: "\n", omittingEmptySubsequences: false).count
            if line < first + lines { return statement }
            first += lines
        }
        return nil
    }

    static func schemaError(_ error: any Error, statement: String, block: [String]? = nil) -> SchemaError {
        if let e = error as? SchemaError { return e }
        var e = SchemaError(message(of: error))
        if let p = error as? PSQLError {
            let state = p.serverInfo?[.sqlState]
            e.sqlState = state
            e.statement = block.flatMap { blockStatement($0, context: p.serverInfo?[.locationContext]) } ?? statement
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
