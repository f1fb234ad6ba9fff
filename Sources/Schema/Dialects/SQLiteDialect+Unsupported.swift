import Foundation
import GRDB
import Manifest

/// SQLite as a schema dialect: the engine's default.
public struct SQLiteDialect: SchemaDialect {
    public init() {}

    public var name: String { "SQLite" }

    public func unsupported(in migration: Migration) -> [UnsupportedConstruct] {
        var found: [UnsupportedConstruct] = []
        var created: Set<String> = []
        // A primary key create_constraint adds to a table created earlier in the migration is that table's key.
        var laterKeys: [String: [String]] = [:]
        for op in migration.operations {
            if case .createConstraint(let c) = op, c.type == .primaryKey { laterKeys[c.table.lowercased(), default: []] += c.columns }
        }
        for (i, op) in migration.operations.enumerated() {
            var scan = Scan(index: i, laterKeys: laterKeys)
            scan.operation(op, createdHere: created)
            found += scan.found
            if case .createTable(let t) = op { created.insert(t.name.lowercased()) }
        }
        return found
    }
}

extension SchemaDialect {
    /// This dialect's operations on one SQLite connection.
    func session(_ db: Database) throws -> any DialectSession {
        guard self is SQLiteDialect else { throw SchemaError("the \(name) dialect cannot run on an SQLite connection") }
        return SQLiteSession(db)
    }
}

/// Finds, without a database, what SQLite cannot express: PostgreSQL-only SQL and PostgreSQL-only options.
private struct Scan {
    let index: Int
    let laterKeys: [String: [String]]
    var found: [UnsupportedConstruct] = []

    static let needs = "needs PostgreSQL"

    mutating func refuse(_ field: String?, _ what: String) {
        found.append(UnsupportedConstruct(operationIndex: index, field: field, message: "\(what): this \(Self.needs); SQLite cannot express it"))
    }

    mutating func operation(_ op: Manifest.Operation, createdHere: Set<String>) {
        switch op {
        case .createTable(let t):
            let keys = t.columns.filter(\.primaryKey).map(\.name) + t.constraints.filter { $0.type == .primaryKey }.flatMap(\.columns)
                + (laterKeys[t.name.lowercased()] ?? [])
            for (c, col) in t.columns.enumerated() {
                column(col, "columns[\(c)]", soleKey: keys.count == 1 && keys[0].lowercased() == col.name.lowercased())
            }
            for (k, con) in t.constraints.enumerated() {
                let f = "constraints[\(k)]"
                if con.type == .exclude { refuse(f, "constraint \(con.name) is an EXCLUDE constraint") }
                if con.nullsNotDistinct { refuse("\(f).nulls_not_distinct", "constraint \(con.name) uses NULLS NOT DISTINCT") }
                if con.noInherit { refuse("\(f).no_inherit", "constraint \(con.name) uses NO INHERIT (table inheritance)") }
                if !con.includeColumns.isEmpty { refuse("\(f).index_parameters", "constraint \(con.name) uses INCLUDE columns") }
                if con.storageParameters != nil { refuse("\(f).index_parameters", "constraint \(con.name) uses storage parameters") }
                if con.tablespace != nil { refuse("\(f).index_parameters", "constraint \(con.name) names a tablespace") }
                if con.deferrable && con.type != .foreignKey { refuse("\(f).deferrable", "constraint \(con.name) is a deferrable \(con.type.rawValue) constraint (SQLite defers only foreign keys)") }
                if let r = con.references { tableReference(r, "\(f).references") }
                if let check = con.check { sql(check, "\(f).check") }
            }
        case .addColumn(let a):
            if a.column.primaryKey { refuse("column.pk", "adding a primary key column to an existing table") }
            column(a.column, "column", soleKey: false, adding: true)
            if let up = a.up { sql(up, "up") }
        case .dropColumn(let d):
            if let down = d.down { sql(down, "down") }
        case .alterColumn(let a):
            if let type = a.type { self.type(type, "type") }
            if let d = a.default { sql(d, "default") }
            if let c = a.check { check(c, "check") }
            if let r = a.references { reference(r, "references") }
            if let up = a.up { sql(up, "up") }
            if let down = a.down { sql(down, "down") }
        case .createIndex(let x):
            if let method = x.method, method != "btree" { refuse("method", "a \(method) index") }
            if x.storageParameters != nil { refuse("storage_parameters", "index storage parameters (\(x.storageParameters ?? ""))") }
            for (c, f) in x.columns.enumerated() {
                if let opclass = f.opclass { refuse("columns[\(c)].opclass", "the operator class \(opclass.isEmpty ? "" : "\(opclass) ")on \(f.column)") }
                if f.nulls != nil { refuse("columns[\(c)].nulls", "NULLS \(f.nulls ?? "") in an index") }
            }
            if let p = x.predicate { sql(p, "predicate") }
        case .createConstraint(let c):
            if c.type == .primaryKey && !createdHere.contains(c.table.lowercased()) {
                found.append(UnsupportedConstruct(operationIndex: index, field: "type", message:
                    "SQLite cannot add a primary key to an existing table in place (it would rebuild the table under both releases); declare the key in the create_table of \(c.table), or do this on PostgreSQL"))
            }
            if c.noInherit { refuse("no_inherit", "NO INHERIT (table inheritance)") }
            if !c.includeColumns.isEmpty { refuse("index_parameters", "INCLUDE columns") }
            if c.storageParameters != nil { refuse("index_parameters", "index storage parameters") }
            if c.tablespace != nil { refuse("index_parameters", "a tablespace") }
            if let check = c.check { sql(check, "check") }
            if let r = c.references { tableReference(r, "references") }
            for (k, v) in c.up.sorted(by: { $0.key < $1.key }) { sql(v, "up.\(k)") }
            for (k, v) in c.down.sorted(by: { $0.key < $1.key }) { sql(v, "down.\(k)") }
        case .dropConstraint(let d):
            if let up = d.up { sql(up, "up") }
            if let down = d.down { sql(down, "down") }
        case .dropMultiColumnConstraint(let d):
            for (k, v) in d.up.sorted(by: { $0.key < $1.key }) { sql(v, "up.\(k)") }
            for (k, v) in d.down.sorted(by: { $0.key < $1.key }) { sql(v, "down.\(k)") }
        case .sql(let r):
            statements(r.up, "up")
            if let down = r.down { statements(down, "down") }
        case .renameTable(let r):
            found.append(UnsupportedConstruct(operationIndex: index, field: nil, message: """
                serving table \(r.from) under a second name, \(r.to), while both releases run needs PostgreSQL: on SQLite the \
                second name can only be a view, and writes through a view report wrong ids (last_insert_rowid(), RETURNING \
                gives NULL, UPDATE reports 0 rows changed). Keep the table's name, or rename it with `sql: {up: "ALTER TABLE \
                \(r.from) RENAME TO \(r.to)", down: "ALTER TABLE \(r.to) RENAME TO \(r.from)"}` in a migration deployed while \
                only one release runs
                """))
        case .dropTable, .renameColumn, .dropIndex, .renameConstraint, .setReplicaIdentity:
            break
        }
    }

    mutating func column(_ c: Manifest.ColumnDefinition, _ f: String, soleKey: Bool, adding: Bool = false) {
        type(c.type, "\(f).type")
        let t = c.type.lowercased().trimmingCharacters(in: .whitespaces)
        if SQLiteSession.serialTypes.contains(t) && !soleKey {
            refuse("\(f).type", "\(c.type) on \(c.name), which is not the table's only key column, is numbered by a sequence")
        }
        if let g = c.generated {
            if let identity = g.identity {
                if !soleKey || !SQLiteSession.integerTypes.contains(t) {
                    refuse("\(f).generated", "an identity column (\(c.name)) that is not an integer primary key")
                } else if identity == "ALWAYS" {
                    refuse("\(f).generated.identity", "GENERATED ALWAYS AS IDENTITY on \(c.name) (SQLite's row key always accepts given values; use BY DEFAULT)")
                }
                if g.sequenceOptions != nil { refuse("\(f).generated.identity.sequence_options", "sequence options") }
            }
            if let e = g.expression { sql(e, "\(f).generated.expression") }
        }
        if let d = c.default { sql(d, "\(f).default") }
        if let k = c.check { check(k, "\(f).check") }
        if let r = c.references { reference(r, "\(f).references") }
        _ = adding
    }

    mutating func type(_ type: String, _ f: String) {
        if type.contains("[") { refuse(f, "the array type \(type)") }
    }

    mutating func check(_ c: CheckConstraint, _ f: String) {
        if c.noInherit { refuse("\(f).no_inherit", "NO INHERIT (table inheritance)") }
        sql(c.constraint, "\(f).constraint")
    }

    mutating func reference(_ r: ForeignKeyReference, _ f: String) {
        if let m = r.matchType, m != "SIMPLE" { refuse("\(f).match_type", "MATCH \(m) (SQLite treats every foreign key as MATCH SIMPLE)") }
    }

    mutating func tableReference(_ r: TableForeignKeyReference, _ f: String) {
        if let m = r.matchType, m != "SIMPLE" { refuse("\(f).match_type", "MATCH \(m) (SQLite treats every foreign key as MATCH SIMPLE)") }
        if !r.onDeleteSetColumns.isEmpty { refuse("\(f).on_delete_set_columns", "ON DELETE SET NULL/DEFAULT on chosen columns") }
    }

    /// PostgreSQL-only syntax and functions in one SQL expression.
    mutating func sql(_ text: String, _ f: String) {
        for problem in PostgreSQLOnly.problems(in: text) { refuse(f, problem) }
    }

    /// PostgreSQL-only statements in raw SQL, then the same checks as expressions.
    mutating func statements(_ text: String, _ f: String) {
        for problem in PostgreSQLOnly.statementProblems(in: text) { refuse(f, problem) }
        sql(text, f)
    }
}

/// PostgreSQL syntax, functions and statements SQLite does not have.
enum PostgreSQLOnly {
    /// Functions PostgreSQL has that SQLite (as linked) lacks; a name SQLite has is never refused.
    static let functions: [String: String] = [
        "now": "now() (SQLite: CURRENT_TIMESTAMP or strftime)", "lpad": "lpad()", "rpad": "rpad()", "gen_random_uuid": "gen_random_uuid()",
        "uuid_generate_v4": "uuid_generate_v4()", "nextval": "nextval() (sequences)", "currval": "currval() (sequences)",
        "setval": "setval() (sequences)", "lastval": "lastval() (sequences)", "to_char": "to_char()", "to_date": "to_date()",
        "to_timestamp": "to_timestamp()", "to_number": "to_number()", "date_trunc": "date_trunc()", "date_part": "date_part()",
        "age": "age()", "array_agg": "array_agg()", "array_length": "array_length()", "array_to_string": "array_to_string()",
        "string_to_array": "string_to_array()", "unnest": "unnest()", "regexp_replace": "regexp_replace()",
        "regexp_matches": "regexp_matches()", "split_part": "split_part()", "initcap": "initcap()", "btrim": "btrim()",
        "md5": "md5()", "encode": "encode()", "decode": "decode()", "jsonb_build_object": "jsonb_build_object()",
        "json_build_object": "json_build_object()", "jsonb_agg": "jsonb_agg()", "json_agg": "json_agg()", "row_to_json": "row_to_json()",
        "to_json": "to_json()", "to_jsonb": "to_jsonb()", "current_setting": "current_setting()", "set_config": "set_config()",
        "greatest": "greatest() (SQLite: max())", "least": "least() (SQLite: min())", "clock_timestamp": "clock_timestamp()",
        "statement_timestamp": "statement_timestamp()", "transaction_timestamp": "transaction_timestamp()", "make_date": "make_date()",
        "make_timestamp": "make_timestamp()", "pg_sleep": "pg_sleep()", "strpos": "strpos() (SQLite: instr())", "chr": "chr() (SQLite: char())",
        "left": "left() (SQLite: substr())", "right": "right() (SQLite: substr())", "reverse": "reverse()", "starts_with": "starts_with()",
        "timezone": "timezone()", "generate_series": "generate_series()",
    ]

    /// The functions this SQLite has, asked once.
    static let sqliteFunctions: Set<String> = {
        guard let queue = try? DatabaseQueue() else { return [] }
        let names = (try? queue.read { try String.fetchAll($0, sql: "SELECT name FROM pragma_function_list") }) ?? []
        return Set(names.map { $0.lowercased() })
    }()

    static func problems(in sql: String) -> [String] {
        var found: [String] = []
        func add(_ p: String) { if !found.contains(p) { found.append(p) } }
        func scan(_ toks: [SQLText.Token]) {
            for (i, t) in toks.enumerated() {
                let next = i + 1 < toks.count ? toks[i + 1] : nil
                if t.kind == .symbol, t.text == ":", next?.kind == .symbol, next?.text == ":" {
                    add("the :: cast (SQLite: CAST(x AS type))")
                }
                if t.kind == .word {
                    let word = t.text.lowercased()
                    if next?.kind == .group, let what = functions[word], !sqliteFunctions.contains(word) { add(what) }
                    if word == "ilike" { add("ILIKE (SQLite's LIKE ignores ASCII case)") }
                    if word == "similar", next?.isKeyword("TO") == true { add("SIMILAR TO") }
                    if word == "interval", next?.kind == .string { add("INTERVAL literals") }
                    if word == "array", next?.kind == .quotedIdentifier, next?.text.hasPrefix("[") == true { add("ARRAY[...] values") }
                }
                if t.kind == .word, t.text.contains("$$") { add("dollar-quoted strings") }
                if t.kind == .group { scan(SQLText.tokens(String(t.text.dropFirst().dropLast()))) }
            }
        }
        scan(SQLText.tokens(sql))
        return found
    }

    static func statementProblems(in sql: String) -> [String] {
        var found: [String] = []
        for statement in statements(sql) {
            let words = SQLText.tokens(statement).prefix(6).filter { $0.kind == .word }.map { $0.text.uppercased() }
            guard let first = words.first else { continue }
            let second = words.dropFirst().first ?? ""
            let rest = Array(words.dropFirst())
            if first == "CREATE" {
                let object = rest.first == "OR" ? rest.dropFirst(2).first ?? "" : (rest.first == "UNIQUE" ? rest.dropFirst().first ?? "" : second)
                if ["TYPE", "EXTENSION", "SEQUENCE", "SCHEMA", "FUNCTION", "PROCEDURE", "DOMAIN", "POLICY", "ROLE", "PUBLICATION", "MATERIALIZED"].contains(object) {
                    found.append("CREATE \(object)\(object == "TYPE" ? " (enums and composite types)" : "")")
                }
            }
            if first == "ALTER", ["TYPE", "SEQUENCE", "SCHEMA", "FUNCTION", "DOMAIN", "ROLE", "POLICY"].contains(second) { found.append("ALTER \(second)") }
            if first == "ALTER", second == "TABLE", words.dropFirst(2).contains("ALTER") {
                found.append("ALTER TABLE ... ALTER COLUMN")
            }
            if ["COMMENT", "GRANT", "REVOKE", "DO", "SET", "RESET", "LISTEN", "NOTIFY", "TRUNCATE", "COPY", "LOCK", "CLUSTER", "REFRESH"].contains(first) {
                found.append("the \(first) statement")
            }
            if ["ATTACH", "DETACH"].contains(first) { found.append("the \(first) statement (a migration may not reach other database files)") }
        }
        return found
    }

    /// Splits SQL text at top-level semicolons (outside strings, quoted names and comments).
    static func statements(_ sql: String) -> [String] {
        var result: [String] = []
        var current = ""
        var quote: Character?
        var chars = Array(sql)[...]
        while let c = chars.first {
            chars = chars.dropFirst()
            if let q = quote {
                current.append(c)
                if c == q { quote = nil }
                continue
            }
            if c == "'" || c == "\"" || c == "`" { quote = c } else if c == "[" { quote = "]" }
            if c == "-", chars.first == "-" {
                while let d = chars.first, d != "\n" { chars = chars.dropFirst() }
                continue
            }
            if c == ";" {
                if !current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { result.append(current) }
                current = ""
                continue
            }
            current.append(c)
        }
        if !current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { result.append(current) }
        return result
    }
}
