import Foundation
import Testing
@testable import Manifest

/// A commit's tree as a dictionary of paths to file contents.
struct DictTree: ManifestTree {
    var files: [String: [UInt8]]

    init(_ files: [String: String]) { self.files = files.mapValues { Array($0.utf8) } }

    func entries(of directory: String) throws -> [(name: String, isDirectory: Bool)]? {
        let prefix = directory + "/"
        var names: [String: Bool] = [:]
        for path in files.keys where path.hasPrefix(prefix) {
            let rest = path.dropFirst(prefix.count)
            let parts = rest.split(separator: "/", maxSplits: 1)
            names[String(parts[0])] = parts.count > 1
        }
        return names.isEmpty ? nil : names.map { ($0.key, $0.value) }
    }

    func contents(of path: String) throws -> [UInt8]? { files[path] }
    func contentID(of path: String) throws -> String? { files[path].map { "id-\($0.count)-\($0.reduce(0) { $0 &+ Int($1) })" } }
}

let goodEnvironment = """
    database: sqlite:shop.db
    health:
      path: /healthz
      interval: 500ms
      timeout: 2s
      healthy_after: 2
      start_timeout: 60s
    drain: 10s
    colors:
      blue:
        release: "1.4.0"
        command: ["python3", "app.py"]
        schema: 0001_create_users
        env: {LOG_LEVEL: info}
        env_files: [/etc/shop/secrets.env]
      green:
        release: "1.5.0"
        command: ["./bin/server", "--v2"]
        schema: 0002_split_name
    """

let goodTraffic = "listen: 127.0.0.1:8080\nlive: blue\n"

let createUsers = """
    operations:
      - create_table:
          name: users
          columns:
            - {name: id, type: integer, pk: true}
            - {name: name, type: text}
    """

let splitName = """
    operations:
      - add_column:
          table: users
          column: {name: first_name, type: text, nullable: true}
          up: "substr(name, 1, instr(name, ' ') - 1)"
      - drop_column:
          table: users
          column: name
          down: "first_name"
    """

func goodFiles() -> [String: String] {
    [
        "apps/shop/environment.yaml": goodEnvironment,
        "apps/shop/traffic.yaml": goodTraffic,
        "apps/shop/schema/0001_create_users.yaml": createUsers,
        "apps/shop/schema/0002_split_name.yaml": splitName,
        "apps/shop/bin/server": "#!/bin/sh\n",
    ]
}

func load(_ files: [String: String]) -> Result<DesiredState, ManifestErrors> {
    DesiredStateLoader.load(tree: DictTree(files), commit: "abc")
}

func diagnostics(_ files: [String: String]) -> [Diagnostic] {
    guard case .failure(let errors) = load(files) else { return [] }
    return errors.diagnostics
}

@Suite struct LoaderTests {
    @Test func loadsTheExampleShape() throws {
        let state = try load(goodFiles()).get()
        let app = try #require(state.apps["shop"])
        #expect(app.environment.database == .sqliteRelative("shop.db"))
        #expect(app.environment.health.interval == .milliseconds(500))
        #expect(app.environment.health.healthyAfter == 2)
        #expect(app.environment.drain == .seconds(10))
        #expect(app.environment.colors[.blue]?.release == "1.4.0")
        #expect(app.environment.colors[.blue]?.env == ["LOG_LEVEL": "info"])
        #expect(app.environment.colors[.blue]?.envFiles == ["/etc/shop/secrets.env"])
        #expect(app.environment.colors[.green]?.command == ["./bin/server", "--v2"])
        #expect(app.traffic?.listen == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(app.route == .live(.blue))
        #expect(app.migrations.map(\.name) == ["0001_create_users", "0002_split_name"])
        guard case .addColumn(let add) = app.migrations[1].operations[0] else { Issue.record("not add_column"); return }
        #expect(add.column.name == "first_name")
        #expect(add.up == "substr(name, 1, instr(name, ' ') - 1)")
        #expect(app.specCommits[.blue] == "abc")
    }

    @Test func databaseRetention() throws {
        #expect(try load(goodFiles()).get().apps["shop"]?.environment.databaseOptions.retention == .seconds(7 * 86_400))
        var files = goodFiles()
        files["apps/shop/environment.yaml"] = goodEnvironment.replacingOccurrences(
            of: "database: sqlite:shop.db", with: "database:\n  url: postgres://shop@db.internal/shop\n  retention: 36h")
        let environment = try #require(try load(files).get().apps["shop"]?.environment)
        #expect(environment.database == .postgres("postgres://shop@db.internal/shop"))
        #expect(environment.databaseOptions.retention == .seconds(36 * 3600))
        files["apps/shop/environment.yaml"] = goodEnvironment.replacingOccurrences(
            of: "database: sqlite:shop.db", with: "database: {url: \"postgres://shop@db.internal/shop\", retention: 7d}")
        #expect(try load(files).get().apps["shop"]?.environment.databaseOptions.retention == .seconds(7 * 86_400))
    }

    @Test func databaseLockAndStatementTimeouts() throws {
        let defaults = try #require(try load(goodFiles()).get().apps["shop"]?.environment.databaseOptions)
        #expect(defaults.lockTimeout == .seconds(1) && defaults.statementTimeout == .seconds(60))
        var files = goodFiles()
        files["apps/shop/environment.yaml"] = goodEnvironment.replacingOccurrences(
            of: "database: sqlite:shop.db", with: "database:\n  url: postgres://shop@db.internal/shop\n  lock_timeout: 200ms\n  statement_timeout: 2m")
        let options = try #require(try load(files).get().apps["shop"]?.environment.databaseOptions)
        #expect(options.lockTimeout == .milliseconds(200))
        #expect(options.statementTimeout == .seconds(120))
        #expect(options.retention == DatabaseOptions.defaultRetention)
        // Settings recorded before the timeouts existed read as the defaults.
        var recorded = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(DatabaseOptions(retention: .seconds(3600)))) as? [String: Any])
        recorded["lockTimeout"] = nil
        recorded["statementTimeout"] = nil
        let earlier = try JSONDecoder().decode(DatabaseOptions.self, from: JSONSerialization.data(withJSONObject: recorded))
        #expect(earlier == DatabaseOptions(retention: .seconds(3600)))
    }

    @Test func weightsSplitTraffic() throws {
        var files = goodFiles()
        files["apps/shop/traffic.yaml"] = "listen: 127.0.0.1:8080\nweights: {blue: 90, green: 10}\n"
        #expect(try load(files).get().apps["shop"]?.route == Route(weights: [.blue: 90, .green: 10]))
    }

    @Test func tlsAndTrustedForwarders() throws {
        var files = goodFiles()
        files["apps/shop/traffic.yaml"] = """
            listen: 127.0.0.1:8443
            live: blue
            tls:
              certificate: /etc/teal/shop/fullchain.pem
              key: /etc/teal/shop/privkey.pem
            trusted_forwarders: [127.0.0.1, 10.0.0.0/8, "::1", "2001:db8::/32", "::ffff:192.0.2.1"]

            """
        let traffic = try #require(try load(files).get().apps["shop"]?.traffic)
        #expect(traffic.tls == TrafficTLS(certificate: "/etc/teal/shop/fullchain.pem", key: "/etc/teal/shop/privkey.pem"))
        #expect(traffic.trustedForwarders == ["127.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32", "::ffff:192.0.2.1"])
        files["apps/shop/traffic.yaml"] = "listen: 127.0.0.1:8080\nlive: blue\ntrusted_forwarders: []\n"
        let plain = try #require(try load(files).get().apps["shop"]?.traffic)
        #expect(plain.tls == nil)
        #expect(plain.trustedForwarders == [])
        #expect(try load(goodFiles()).get().apps["shop"]?.traffic?.trustedForwarders == nil)
    }

    @Test func forwarderAddresses() {
        for good in ["127.0.0.1", "10.0.0.0/8", "0.0.0.0/0", "::1", "::", "fe80::/10", "2001:db8:0:0:0:0:0:1", "2001:db8::1/128",
                     "::ffff:192.0.2.1"] {
            #expect(ForwarderAddress.isValid(good), "\(good)")
        }
        for bad in ["", "10.0.0", "10.0.0.256", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "::1/129", "1:2:3:4:5:6:7:8:9", ":::1",
                    "1::2::3", "host.example", "10.0.0.0/8/8", "12345::1", ":1::2", "010.0.0.1"] {
            #expect(!ForwarderAddress.isValid(bad), "\(bad)")
        }
    }

    @Test func definitionsRoundTripThroughJSON() throws {
        let state = try load(goodFiles()).get()
        let data = try JSONEncoder().encode(state)
        #expect(try JSONDecoder().decode(DesiredState.self, from: data) == state)
    }

    struct Bad: CustomTestStringConvertible, Sendable {
        var name: String
        var path: String
        var contents: String
        var expected: String  // "path:line: fragment"
        var testDescription: String { name }
    }

    static let bad: [Bad] = [
        Bad(name: "unknown key", path: "apps/shop/environment.yaml", contents: goodEnvironment + "\nreplicas: 3\n",
            expected: "apps/shop/environment.yaml:20:1: unknown key 'replicas'"),
        Bad(name: "unknown key in a color", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "    release: \"1.5.0\"", with: "    release: \"1.5.0\"\n    image: x"),
            expected: "apps/shop/environment.yaml:18:5: unknown key 'image' in colors.green"),
        Bad(name: "wrong type", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "healthy_after: 2", with: "healthy_after: two"),
            expected: "apps/shop/environment.yaml:6:18: health.healthy_after must be an integer"),
        Bad(name: "command is not a list", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "[\"python3\", \"app.py\"]", with: "{a: b}"),
            expected: "apps/shop/environment.yaml:12:14: colors.blue.command must be a list"),
        Bad(name: "bad duration", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "drain: 10s", with: "drain: 10 seconds"),
            expected: "apps/shop/environment.yaml:8:8: drain: '10 seconds' is not a duration"),
        Bad(name: "relative command leaves the app folder", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "./bin/server", with: "../other/server"),
            expected: "apps/shop/environment.yaml:18:14: colors.green.command[0] '../other/server' leaves the app folder"),
        Bad(name: "relative command not in the commit", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "./bin/server", with: "./bin/missing"),
            expected: "apps/shop/environment.yaml:18:14: colors.green.command[0] './bin/missing' is not a file"),
        Bad(name: "schema names no migration", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "schema: 0002_split_name", with: "schema: 0003_nope"),
            expected: "apps/shop/environment.yaml:19:13: colors.green.schema '0003_nope' names no migration"),
        Bad(name: "unknown color", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "  green:", with: "  red:"),
            expected: "apps/shop/environment.yaml:16:3: unknown color 'red'"),
        Bad(name: "reserved environment variable", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "LOG_LEVEL: info", with: "PORT: \"1\""),
            expected: "apps/shop/environment.yaml:14:10: colors.blue.env: PORT is set by teal"),
        Bad(name: "bad database url", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "sqlite:shop.db", with: "sqlite:../escape.db"),
            expected: "apps/shop/environment.yaml:1:11: relative SQLite path '../escape.db' must stay inside"),
        Bad(name: "bad retention", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "database: sqlite:shop.db",
                                                           with: "database:\n  url: postgres://shop@db.internal/shop\n  retention: a week"),
            expected: "apps/shop/environment.yaml:3:14: database.retention: 'a week' is not a duration"),
        Bad(name: "zero retention", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "database: sqlite:shop.db",
                                                           with: "database:\n  url: postgres://shop@db.internal/shop\n  retention: 0s"),
            expected: "apps/shop/environment.yaml:3:14: database.retention must be greater than zero"),
        Bad(name: "retention on SQLite", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "database: sqlite:shop.db", with: "database:\n  url: sqlite:shop.db\n  retention: 1d"),
            expected: "apps/shop/environment.yaml:3:14: database.retention applies to postgres:// databases only"),
        Bad(name: "bad lock_timeout", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "database: sqlite:shop.db",
                                                           with: "database:\n  url: postgres://shop@db.internal/shop\n  lock_timeout: 1 second"),
            expected: "apps/shop/environment.yaml:3:17: database.lock_timeout: '1 second' is not a duration"),
        Bad(name: "zero statement_timeout", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "database: sqlite:shop.db",
                                                           with: "database:\n  url: postgres://shop@db.internal/shop\n  statement_timeout: 0ms"),
            expected: "apps/shop/environment.yaml:3:22: database.statement_timeout must be greater than zero"),
        Bad(name: "lock_timeout beyond PostgreSQL's limit", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "database: sqlite:shop.db",
                                                           with: "database:\n  url: postgres://shop@db.internal/shop\n  lock_timeout: 25d"),
            expected: "apps/shop/environment.yaml:3:17: database.lock_timeout must be at most 2147483647ms (about 24 days), PostgreSQL's limit"),
        Bad(name: "lock_timeout on SQLite", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "database: sqlite:shop.db", with: "database:\n  url: sqlite:shop.db\n  lock_timeout: 2s"),
            expected: "apps/shop/environment.yaml:3:17: database.lock_timeout applies to postgres:// databases only"),
        Bad(name: "statement_timeout on SQLite", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "database: sqlite:shop.db", with: "database:\n  url: sqlite:shop.db\n  retention: 1d\n  statement_timeout: 2s"),
            expected: "apps/shop/environment.yaml:4:22: database.statement_timeout applies to postgres:// databases only"),
        Bad(name: "unknown key in database", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "database: sqlite:shop.db", with: "database:\n  url: sqlite:shop.db\n  pool: 5"),
            expected: "apps/shop/environment.yaml:3:3: unknown key 'pool' in database"),
        Bad(name: "database mapping without url", path: "apps/shop/environment.yaml",
            contents: goodEnvironment.replacingOccurrences(of: "database: sqlite:shop.db", with: "database:\n  retention: 1d"),
            expected: "apps/shop/environment.yaml:2:3: database is missing required key 'url'"),
        Bad(name: "live together with weights", path: "apps/shop/traffic.yaml",
            contents: "listen: 127.0.0.1:8080\nlive: blue\nweights: {blue: 100}\n",
            expected: "apps/shop/traffic.yaml:2:7: traffic.yaml has both 'live' and 'weights'"),
        Bad(name: "weights not summing to 100", path: "apps/shop/traffic.yaml",
            contents: "listen: 127.0.0.1:8080\nweights: {blue: 90, green: 20}\n",
            expected: "apps/shop/traffic.yaml:2:10: weights must sum to 100, they sum to 110"),
        Bad(name: "bad listen address", path: "apps/shop/traffic.yaml", contents: "listen: 127.0.0.1:99999\nlive: blue\n",
            expected: "apps/shop/traffic.yaml:1:9: listen: '127.0.0.1:99999' is not HOST:PORT"),
        Bad(name: "YAML syntax error", path: "apps/shop/traffic.yaml", contents: "listen: 127.0.0.1:8080\nlive: [blue\n",
            expected: "apps/shop/traffic.yaml:3:1: YAML syntax error"),
        Bad(name: "duplicate key", path: "apps/shop/traffic.yaml", contents: "listen: 127.0.0.1:8080\nlive: blue\nlive: green\n",
            expected: "apps/shop/traffic.yaml:2:1: YAML syntax error: duplicate key live"),
        Bad(name: "relative TLS certificate path", path: "apps/shop/traffic.yaml",
            contents: "listen: 127.0.0.1:8443\nlive: blue\ntls:\n  certificate: certs/shop.pem\n  key: /etc/shop/key.pem\n",
            expected: "apps/shop/traffic.yaml:4:16: tls.certificate: 'certs/shop.pem' must be an absolute host path without '..'"),
        Bad(name: "TLS key path with ..", path: "apps/shop/traffic.yaml",
            contents: "listen: 127.0.0.1:8443\nlive: blue\ntls: {certificate: /etc/shop/cert.pem, key: /etc/../root/key.pem}\n",
            expected: "apps/shop/traffic.yaml:3:45: tls.key: '/etc/../root/key.pem' must be an absolute host path"),
        Bad(name: "TLS without its key", path: "apps/shop/traffic.yaml",
            contents: "listen: 127.0.0.1:8443\nlive: blue\ntls: {certificate: /etc/shop/cert.pem}\n",
            expected: "apps/shop/traffic.yaml:3:6: tls is missing required key 'key'"),
        Bad(name: "unknown key under tls", path: "apps/shop/traffic.yaml",
            contents: "listen: 127.0.0.1:8443\nlive: blue\ntls:\n  certificate: /etc/shop/cert.pem\n  key: /etc/shop/key.pem\n  chain: /etc/shop/chain.pem\n",
            expected: "apps/shop/traffic.yaml:6:3: unknown key 'chain' in tls"),
        Bad(name: "unknown top-level key in traffic.yaml", path: "apps/shop/traffic.yaml",
            contents: "listen: 127.0.0.1:8443\nlive: blue\ntrusted_forwarder: [127.0.0.1]\n",
            expected: "apps/shop/traffic.yaml:3:1: unknown key 'trusted_forwarder' in traffic.yaml"),
        Bad(name: "trusted forwarder that is not an address", path: "apps/shop/traffic.yaml",
            contents: "listen: 127.0.0.1:8080\nlive: blue\ntrusted_forwarders:\n  - 127.0.0.1\n  - lb.example.com\n",
            expected: "apps/shop/traffic.yaml:5:5: trusted_forwarders: 'lb.example.com' is not an IP address or network"),
        Bad(name: "trusted forwarder with a bad prefix", path: "apps/shop/traffic.yaml",
            contents: "listen: 127.0.0.1:8080\nlive: blue\ntrusted_forwarders: [10.0.0.0/33]\n",
            expected: "apps/shop/traffic.yaml:3:22: trusted_forwarders: '10.0.0.0/33' is not an IP address or network"),
        Bad(name: "trusted forwarders not a list", path: "apps/shop/traffic.yaml",
            contents: "listen: 127.0.0.1:8080\nlive: blue\ntrusted_forwarders: 10.0.0.0/8\n",
            expected: "apps/shop/traffic.yaml:3:21: trusted_forwarders must be a list"),
        Bad(name: "migration file misnamed", path: "apps/shop/schema/3_add.yaml", contents: createUsers,
            expected: "apps/shop/schema/3_add.yaml:1:1: migration files are named NNNN_name.yaml or NNNN_name.json"),
        Bad(name: "duplicate migration number", path: "apps/shop/schema/0002_other.yaml", contents: createUsers,
            expected: "apps/shop/schema/0002_split_name.yaml:1:1: migration number 0002 is also used by 0002_other.yaml"),
        Bad(name: "unknown operation", path: "apps/shop/schema/0003_x.yaml", contents: "operations:\n  - add_colum:\n      table: users\n",
            expected: "apps/shop/schema/0003_x.yaml:2:5: unknown operation 'add_colum'"),
        Bad(name: "missing operation field", path: "apps/shop/schema/0003_x.yaml",
            contents: "operations:\n  - rename_column:\n      table: users\n      from: a\n",
            expected: "apps/shop/schema/0003_x.yaml:3:7: operations[0].rename_column is missing required key 'to'"),
        Bad(name: "SQL identifier with a quote", path: "apps/shop/schema/0003_x.yaml",
            contents: "operations:\n  - drop_table:\n      name: 'users\"; DROP TABLE x; --'\n",
            expected: "apps/shop/schema/0003_x.yaml:3:13: operations[0].drop_table.name 'users\"; DROP TABLE x; --' is not a valid SQL identifier"),
        Bad(name: "foreign key action misspelt", path: "apps/shop/schema/0003_x.yaml",
            contents: "operations:\n  - alter_column:\n      table: users\n      column: name\n      references: {name: fk, table: t, column: id, on_delete: EXPLODE}\n",
            expected: "apps/shop/schema/0003_x.yaml:5:63: operations[0].alter_column.references.on_delete 'EXPLODE' is not one of CASCADE"),
        Bad(name: "check constraint without its expression", path: "apps/shop/schema/0003_x.yaml",
            contents: "operations:\n  - create_constraint: {table: users, name: c, type: check, columns: [name]}\n",
            expected: "apps/shop/schema/0003_x.yaml:2:24: operations[0].create_constraint: a check constraint needs `check`"),
        Bad(name: "json with an unknown key", path: "apps/shop/schema/0003_x.json",
            contents: "{\n  \"operations\": [\n    {\"drop_index\": {\"name\": \"i\", \"table\": \"t\"}}\n  ]\n}\n",
            expected: "apps/shop/schema/0003_x.json:3:34: unknown key 'table' in operations[0].drop_index"),
        Bad(name: "alter_column type with SQL in it", path: "apps/shop/schema/0003_x.yaml",
            contents: "operations:\n  - alter_column:\n      table: users\n      column: name\n      name: full_name\n      type: \"text; DROP TABLE users\"\n",
            expected: "apps/shop/schema/0003_x.yaml:6:13: operations[0].alter_column.type 'text; DROP TABLE users' is not a column type"),
        Bad(name: "bad app name", path: "apps/Shop_1/environment.yaml", contents: goodEnvironment,
            expected: "apps/Shop_1:1:1: app name 'Shop_1' must match [a-z][a-z0-9-]*"),
    ]

    @Test(arguments: bad)
    func reportsBadInputAtFileAndLine(_ bad: Bad) {
        var files = goodFiles()
        files[bad.path] = bad.contents
        let found = diagnostics(files).map(\.description)
        #expect(found.contains { $0.hasPrefix(bad.expected) }, "got: \(found)")
    }

    @Test func trafficToAnUndeclaredColorIsAnError() {
        var files = goodFiles()
        files["apps/shop/environment.yaml"] = String(goodEnvironment.prefix { $0 != "g" }.dropLast(2))
        files["apps/shop/traffic.yaml"] = "listen: 127.0.0.1:8080\nweights: {blue: 50, green: 50}\n"
        let found = diagnostics(files).map(\.description)
        #expect(found.contains { $0.hasPrefix("apps/shop/traffic.yaml:2:21: green gets traffic but is not declared") }, "got: \(found)")
    }

    @Test func invalidUTF8IsReportedWithItsPosition() {
        var tree = DictTree(goodFiles())
        tree.files["apps/shop/traffic.yaml"] = Array("listen: 127.0.0.1:8080\nlive: bl".utf8) + [0xFF, 0xFE] + Array("ue\n".utf8)
        guard case .failure(let errors) = DesiredStateLoader.load(tree: tree, commit: "abc") else { Issue.record("expected failure"); return }
        #expect(errors.diagnostics.map(\.description) == ["apps/shop/traffic.yaml:2:9: invalid UTF-8"])
    }

    @Test func reportsEveryErrorOfARunNotJustTheFirst() {
        var files = goodFiles()
        files["apps/shop/traffic.yaml"] = "listen: nowhere\nlive: purple\n"
        files["apps/shop/environment.yaml"] = goodEnvironment.replacingOccurrences(of: "drain: 10s", with: "drain: soon")
        files["apps/shop/schema/0003_bad.yaml"] = "operations: []\n"
        let found = diagnostics(files).map(\.description)
        #expect(found.count >= 4, "got: \(found)")
        #expect(found.contains { $0.hasPrefix("apps/shop/traffic.yaml:1:9") })
        #expect(found.contains { $0.hasPrefix("apps/shop/traffic.yaml:2:7") })
        #expect(found.contains { $0.hasPrefix("apps/shop/environment.yaml:8:8") })
        #expect(found.contains { $0.hasPrefix("apps/shop/schema/0003_bad.yaml:1:13") })
    }

    @Test func twoAppsCannotShareADatabaseOrListenAddress() {
        var files = goodFiles()
        for (path, text) in goodFiles() { files[path.replacingOccurrences(of: "apps/shop/", with: "apps/shop-two/")] = text }
        let found = diagnostics(files).map(\.description)
        #expect(found.contains { $0.contains("apps/shop/environment.yaml") && $0.contains("also used by app 'shop-two'") || $0.contains("apps/shop-two/environment.yaml") && $0.contains("also used by app 'shop'") })
        #expect(found.contains { $0.contains("traffic.yaml") && $0.contains("listen 127.0.0.1:8080 is also used") })
    }
}

@Suite struct ScalarParsingTests {
    @Test func durations() {
        #expect(DurationParser.parse("500ms") == .milliseconds(500))
        #expect(DurationParser.parse("2s") == .seconds(2))
        #expect(DurationParser.parse("3m") == .seconds(180))
        #expect(DurationParser.parse("1h") == .seconds(3600))
        #expect(DurationParser.parse("7d") == .seconds(7 * 86_400))
        for bad in ["", "s", "1.5s", "-1s", "10", "1w", "d", "ms", "1 s", "1.5d"] { #expect(DurationParser.parse(bad) == nil, "\(bad)") }
        #expect(DurationParser.format(.milliseconds(1500)) == "1500ms")
        #expect(DurationParser.format(.seconds(120)) == "2m")
        #expect(DurationParser.format(.seconds(2 * 86_400)) == "2d")
        #expect(DurationParser.format(.seconds(36 * 3600)) == "36h")
    }

    @Test func listenAddresses() {
        #expect(ListenAddress.parse("127.0.0.1:8080") == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(ListenAddress.parse("[::1]:80") == ListenAddress(host: "::1", port: 80))
        #expect(ListenAddress.parse("localhost:1") != nil)
        for bad in ["8080", "127.0.0.1", "127.0.0.1:0", "256.0.0.1:80", "\u{661}\u{662}\u{667}.0.0.1:80", "1\u{BD}.0.0.1:80", "example.com:80", "[::1]80", "1.2.3:4"] {
            #expect(ListenAddress.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func names() {
        #expect(Identifiers.isValidAppName("shop-2"))
        #expect(!Identifiers.isValidAppName("2shop"))
        #expect(!Identifiers.isValidAppName("Shop"))
        #expect(Identifiers.isValidSQLIdentifier("_users2"))
        #expect(!Identifiers.isValidSQLIdentifier("users; drop"))
        #expect(Identifiers.quote("we\"ird") == "\"we\"\"ird\"")
        #expect(Identifiers.parseMigrationStem("0002_split_name")! == (2, "split_name"))
        #expect(Identifiers.parseMigrationStem("002_split") == nil)
        #expect(Identifiers.parseMigrationStem("0002_Split") == nil)
    }

    @Test func databaseURLs() throws {
        #expect(try DatabaseLocation.parse("sqlite:shop.db").get() == .sqliteRelative("shop.db"))
        #expect(try DatabaseLocation.parse("sqlite:///var/lib/shop.db").get() == .sqliteAbsolute("/var/lib/shop.db"))
        #expect(try DatabaseLocation.parse("postgres://u@h/db").get() == .postgres("postgres://u@h/db"))
        for bad in ["mysql://x", "sqlite:", "sqlite:/abs", "sqlite:a/../../b"] {
            if case .success = DatabaseLocation.parse(bad) { Issue.record("accepted \(bad)") }
        }
    }
}

@Suite struct RobustnessTests {
    /// Every prefix and every single-byte corruption of each manifest either loads or yields
    /// diagnostics naming a file of the app; none crashes.
    @Test func truncatedAndCorruptedFilesNeverCrash() {
        let files = goodFiles()
        for (path, text) in files where path.hasSuffix(".yaml") {
            let bytes = Array(text.utf8)
            var variants: [[UInt8]] = (0..<bytes.count).map { Array(bytes[..<$0]) }
            for i in stride(from: 0, to: bytes.count, by: 3) {
                for replacement: UInt8 in [UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "\t"), 0xC3] {
                    var copy = bytes
                    copy[i] = replacement
                    variants.append(copy)
                }
            }
            for variant in variants {
                var tree = DictTree(files)
                tree.files[path] = variant
                if case .failure(let errors) = DesiredStateLoader.load(tree: tree, commit: "abc") {
                    #expect(!errors.diagnostics.isEmpty)
                    #expect(errors.diagnostics.allSatisfy { $0.path.hasPrefix("apps/shop") && $0.line >= 1 && $0.column >= 1 })
                }
            }
        }
    }
}
