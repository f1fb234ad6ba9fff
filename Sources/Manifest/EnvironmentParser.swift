import Yams

/// Reads environment.yaml strictly.
enum EnvironmentParser {
    static let reservedEnv: Set<String> = ["PORT", "TEAL_APP", "TEAL_COLOR", "TEAL_RELEASE", "TEAL_COMMIT", "TEAL_SCHEMA",
                                           "DATABASE_URL", "DATABASE_PATH"]

    /// Positions of each color's keys, for cross-file checks done later.
    struct Marks {
        var colorSchema: [ColorName: Node] = [:]
        var colorCommand: [ColorName: Node] = [:]
        var database: Node?
    }

    static func parse(_ bytes: [UInt8], path: String, app: String, sink: DiagnosticSink) -> (EnvironmentManifest, Marks)? {
        let y = StrictYAML(path: path, sink: sink)
        guard let root = y.compose(bytes) else { return nil }
        guard let top = y.mapping(root, "environment.yaml", allowed: ["database", "health", "drain", "colors"]) else { return nil }
        var marks = Marks()
        let before = sink.items.count

        var database = DatabaseLocation.sqliteRelative("\(app).db")
        var databaseOptions = DatabaseOptions()
        if let node = top["database"] {
            // `database: URL`, or `database: {url: URL, retention: 7d, lock_timeout: 1s, statement_timeout: 60s}`.
            var url: (Node, String)?
            var postgresOnly: [(Node, String)] = []
            if node.mapping != nil {
                if let m = y.mapping(node, "database", allowed: ["url", "retention", "lock_timeout", "statement_timeout"], required: ["url"]) {
                    if let n = m["url"], let text = y.string(n, "database.url") { url = (n, text) }
                    func duration(_ key: String, _ set: (Duration) -> Void) {
                        guard let n = m[key], let d = y.duration(n, "database.\(key)") else { return }
                        postgresOnly.append((n, key))
                        set(positive(d, n, "database.\(key)", y))
                    }
                    duration("retention") { databaseOptions.retention = $0 }
                    // PostgreSQL takes at most 2147483647 ms for either; a longer one would fail every DDL at apply time.
                    duration("lock_timeout") { databaseOptions.lockTimeout = atMostPostgresTimeout($0, m["lock_timeout"]!, "database.lock_timeout", y) }
                    duration("statement_timeout") {
                        databaseOptions.statementTimeout = atMostPostgresTimeout($0, m["statement_timeout"]!, "database.statement_timeout", y)
                    }
                }
            } else if let text = y.string(node, "database") {
                url = (node, text)
            }
            if let (n, text) = url {
                marks.database = n
                switch DatabaseLocation.parse(text) {
                case .success(let location):
                    database = location
                    if !location.isPostgres {
                        for (n, key) in postgresOnly {
                            y.error(n, "database.\(key) applies to postgres:// databases only (" + (key == "retention"
                                ? "complete on SQLite keeps nothing aside)" : "SQLite waits for locks by its own busy timeout)"))
                        }
                    }
                case .failure(let failure): y.error(n, failure.message)
                }
            }
        }

        var health = HealthCheck()
        if let node = top["health"],
           let h = y.mapping(node, "health", allowed: ["path", "interval", "timeout", "healthy_after", "start_timeout"]) {
            if let n = h["path"], let p = y.string(n, "health.path") {
                if p.hasPrefix("/") && !p.contains(where: { $0.isWhitespace || $0.isNewline }) { health.path = p } else {
                    y.error(n, "health.path must start with '/' and contain no spaces, got '\(p)'")
                }
            }
            if let n = h["interval"], let d = y.duration(n, "health.interval") { health.interval = positive(d, n, "health.interval", y) }
            if let n = h["timeout"], let d = y.duration(n, "health.timeout") { health.timeout = positive(d, n, "health.timeout", y) }
            if let n = h["start_timeout"], let d = y.duration(n, "health.start_timeout") { health.startTimeout = positive(d, n, "health.start_timeout", y) }
            if let n = h["healthy_after"], let v = y.int(n, "health.healthy_after") {
                if v >= 1 { health.healthyAfter = v } else { y.error(n, "health.healthy_after must be at least 1") }
            }
        }

        var drain = Duration.seconds(10)
        if let node = top["drain"], let d = y.duration(node, "drain") { drain = d }

        var colors: [ColorName: ColorSpec] = [:]
        if let node = top["colors"], !StrictYAML.isNull(node) {
            if let map = node.mapping {
                for (key, value) in map {
                    guard let name = key.scalar?.string else { y.error(key, "colors: keys must be color names"); continue }
                    guard let color = ColorName(rawValue: name) else {
                        y.error(key, "unknown color '\(name)' (colors are blue and green)")
                        continue
                    }
                    if StrictYAML.isNull(value) { continue }  // `green:` with nothing: not running
                    if let spec = parseColor(value, color: color, y: y, marks: &marks) { colors[color] = spec }
                }
            } else {
                y.error(node, "colors must be a mapping of blue/green to their specs")
            }
        }
        guard sink.items.count == before else { return nil }
        return (EnvironmentManifest(database: database, databaseOptions: databaseOptions, health: health, drain: drain, colors: colors), marks)
    }

    private static func atMostPostgresTimeout(_ d: Duration, _ node: Node, _ what: String, _ y: StrictYAML) -> Duration {
        if d > .milliseconds(Int64(Int32.max)) { y.error(node, "\(what) must be at most 2147483647ms (about 24 days), PostgreSQL's limit") }
        return d
    }

    private static func positive(_ d: Duration, _ node: Node, _ what: String, _ y: StrictYAML) -> Duration {
        if d <= .zero { y.error(node, "\(what) must be greater than zero") }
        return d
    }

    private static func parseColor(_ node: Node, color: ColorName, y: StrictYAML, marks: inout Marks) -> ColorSpec? {
        let what = "colors.\(color)"
        guard let m = y.mapping(node, what, allowed: ["release", "command", "schema", "env", "env_files", "restart_on_change"],
                                required: ["release", "command", "schema"]) else { return nil }
        var ok = m["release"] != nil && m["command"] != nil && m["schema"] != nil
        let release = m["release"].flatMap { y.string($0, "\(what).release") }
        var command: [String]?
        if let n = m["command"] {
            marks.colorCommand[color] = n
            command = y.stringList(n, "\(what).command")
            if command?.isEmpty == true { y.error(n, "\(what).command must not be empty"); command = nil }
        }
        var schema: String?
        if let n = m["schema"] {
            marks.colorSchema[color] = n
            schema = y.string(n, "\(what).schema")
        }
        var env: [String: String] = [:]
        if let n = m["env"] {
            if let values = y.stringMap(n, "\(what).env") {
                for key in values.keys.sorted() {
                    if !Identifiers.isValidEnvName(key) {
                        y.error(n, "\(what).env: '\(key)' is not a valid environment variable name"); ok = false
                    } else if reservedEnv.contains(key) {
                        y.error(n, "\(what).env: \(key) is set by teal and cannot be overridden"); ok = false
                    }
                }
                env = values
            } else { ok = false }
        }
        var envFiles: [String] = []
        if let n = m["env_files"] {
            if let files = y.stringList(n, "\(what).env_files") {
                for file in files where !file.hasPrefix("/") || file.split(separator: "/").contains("..") {
                    y.error(n, "\(what).env_files: '\(file)' must be an absolute host path without '..'"); ok = false
                }
                envFiles = files
            } else { ok = false }
        }
        var restartOnChange = false
        if let n = m["restart_on_change"] {
            if let value = y.bool(n, "\(what).restart_on_change") { restartOnChange = value } else { ok = false }
        }
        guard ok, let release, let command, let schema else { return nil }
        var spec = ColorSpec(release: release, command: command, schema: schema, env: env, envFiles: envFiles)
        if restartOnChange { spec.restartOnChange = true }
        return spec
    }
}
