import Foundation

/// Where a PostgreSQL app database is and how to log in, from a `postgres://` URL as libpq reads it.
///
/// The password is taken, in this order, from the URL (discouraged: the URL is committed to git), `PGPASSWORD`,
/// or the password file (`PGPASSFILE`, else `~/.pgpass`, libpq's format `host:port:database:user:password`).
/// It is never part of `description`, of an error or of a color's `DATABASE_URL`.
public struct PostgresSettings: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    /// libpq's `sslmode`: disable, allow, prefer (the default), require, verify-ca, verify-full.
    public var sslMode: String
    /// `sslrootcert`: CA file for verify-ca / verify-full.
    public var sslRootCert: String?
    /// The schema holding the app's tables (pgroll's `--schema`); `public` unless the URL says `?schema=`.
    public var schema: String
    /// Query parameters passed on to colors (all but the password and teal's own `schema`).
    var passThrough: [(String, String)]
    var password: String?
    /// Where the password came from, for messages (never the password itself).
    public var passwordSource: String

    /// Parses `url`; `environment` supplies PGPASSWORD, PGPASSFILE and HOME.
    public init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql" else {
            throw PostgresSettingsError("database URL must be postgres://USER@HOST[:PORT]/DATABASE, got \(Self.redacted(url))")
        }
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        port = components.port ?? 5432
        user = components.user.flatMap { $0.removingPercentEncoding } ?? environment["PGUSER"] ?? environment["USER"] ?? "postgres"
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.removingPercentEncoding.flatMap { $0.isEmpty ? nil : $0 } ?? user
        var sslMode = "prefer"
        var schema = "public"
        var rootCert: String?
        var rest: [(String, String)] = []
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode": sslMode = value; rest.append((item.name, value))
            case "sslrootcert": rootCert = value; rest.append((item.name, value))
            case "schema": schema = value
            case "password":
                throw PostgresSettingsError("the database URL carries a password (\(Self.redacted(url))); give it in a password file (PGPASSFILE) or PGPASSWORD instead, never in git")
            case "options", "user", "dbname", "host", "port":
                throw PostgresSettingsError("the database URL sets '\(item.name)' as a parameter; teal sets it for each color (\(Self.redacted(url)))")
            default: rest.append((item.name, value))
            }
        }
        guard ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(sslMode) else {
            throw PostgresSettingsError("sslmode must be disable, allow, prefer, require, verify-ca or verify-full, got '\(sslMode)'")
        }
        guard Self.isPlainIdentifier(schema) else {
            throw PostgresSettingsError("schema must be a plain lower-case identifier ([a-z_][a-z0-9_]*), got '\(schema)'")
        }
        self.sslMode = sslMode
        self.sslRootCert = rootCert
        self.schema = schema
        self.passThrough = rest
        if let inURL = components.password {
            password = inURL.removingPercentEncoding ?? inURL
            passwordSource = "the database URL"
        } else if let env = environment["PGPASSWORD"] {
            password = env
            passwordSource = "PGPASSWORD"
        } else {
            let file = environment["PGPASSFILE"] ?? environment["HOME"].map { "\($0)/.pgpass" }
            if let file, let found = Self.passwordFromFile(file, host: host, port: port, database: database, user: user) {
                password = found
                passwordSource = file
            } else {
                password = nil
                passwordSource = "nowhere: none in PGPASSWORD\(file.map { " or \($0)" } ?? "")"
            }
        }
    }

    /// The URL without any password.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    /// The `DATABASE_URL` of a color written for the version schema `versionSchema`: no password (libpq finds it
    /// through the `PGPASSFILE` the color inherits), and `options` fixing the color's `search_path` and teal's
    /// shape setting at connect, so every session of that color sees exactly its migration's tables and columns.
    public func colorURL(shape: String) -> String {
        let versionSchema = MigrationPlan.versionSchema(schema: schema, migration: shape)
        var c = URLComponents()
        c.scheme = "postgres"
        c.user = user
        c.host = host
        c.port = port
        c.path = "/" + database
        var items = passThrough.map { URLQueryItem(name: $0.0, value: $0.1) }
        items.append(URLQueryItem(name: "options", value: "-c search_path=\(versionSchema) -c \(ShapeSetting.name)=\(shape)"))
        c.queryItems = items
        // URLComponents leaves '=' and '+' in query values as they are; libpq decodes percent escapes only.
        c.percentEncodedQuery = c.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        return c.string ?? description
    }

    /// `url` with any password replaced by `***`, for messages.
    public static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return "(unparsable URL)" }
        if c.password != nil { c.password = "***" }
        if let items = c.queryItems, items.contains(where: { $0.name == "password" }) {
            c.queryItems = items.map { $0.name == "password" ? URLQueryItem(name: "password", value: "***") : $0 }
        }
        return c.string ?? "(unparsable URL)"
    }

    static func isPlainIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, s.utf8.count <= 63 else { return false }
        let lower = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz_")
        let rest = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz_0123456789")
        return lower.contains(first) && s.unicodeScalars.allSatisfy { rest.contains($0) }
    }

    /// libpq's password file: the first line whose fields match (`*` matches anything; `\:` and `\\` escape).
    static func passwordFromFile(_ path: String, host: String, port: Int, database: String, user: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            var fields: [String] = []
            var current = ""
            var escaped = false
            for ch in line {
                if escaped { current.append(ch); escaped = false }
                else if ch == "\\" { escaped = true }
                else if ch == ":" && fields.count < 4 { fields.append(current); current = "" }
                else { current.append(ch) }
            }
            fields.append(current)
            guard fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            let hostMatches = fields[0] == "*" || fields[0] == host || (fields[0] == "localhost" && host == "127.0.0.1")
            if hostMatches && zip(fields[1...3], wanted[1...3]).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }
}

public struct PostgresSettingsError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The session setting that tells teal's triggers which shape a session writes in. A color's sessions get it at
/// connect (in `options`, with its `search_path`); teal's backfill sets it to `backfill`; any other session
/// (psql, a job that predates teal) writes in the old shape, as it would without teal.
enum ShapeSetting {
    static let name = "teal.shape"
    static let backfill = "backfill"
    /// The setting as SQL, '' when unset.
    static let current = "coalesce(current_setting('\(name)', true), '')"
}
