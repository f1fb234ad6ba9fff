import Foundation
import GRDB
import Manifest

/// The SQLite side of the schema engine, working on one connection inside the engine's transaction.
///
/// SQLite has one namespace per file, so both shapes live in it at once: the real table keeps the old shape;
/// columns the new shape adds or renames are extra physical columns kept in step by `AFTER` triggers; a renamed
/// table gets a view under its new name with `INSTEAD OF` triggers.
final class SQLiteSession: DialectSession {
    /// A table earlier versions of the engine used as a trigger guard; complete and rollback still drop it.
    static let guardTable = "_teal_guard"

    let db: Database
    var databaseName: String { "SQLite" }

    init(_ db: Database) { self.db = db }

    func checkDualShape(_ table: String) throws {
        if !(try hasRowid(table)) { throw SchemaError("table \(table) is WITHOUT ROWID, which the SQLite engine cannot show in two shapes") }
    }

    private func q(_ name: String) -> String { Identifiers.quote(name) }

    func execute(_ sql: String) throws {
        try db.execute(sql: sql)
        db.clearSchemaCache()
    }

    func tableExists(_ name: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE)", arguments: [name]) ?? false
    }

    func viewExists(_ name: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = ? COLLATE NOCASE)", arguments: [name]) ?? false
    }

    func tableOfIndex(_ name: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ? COLLATE NOCASE", arguments: [name])
    }

    func columns(of table: String) throws -> [ColumnInfo] {
        try Row.fetchAll(db, sql: "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?)", arguments: [table]).map {
            ColumnInfo(name: $0["name"], type: $0["type"] ?? "", notNull: ($0["notnull"] as Int?) == 1,
                       defaultSQL: $0["dflt_value"], primaryKey: (($0["pk"] as Int?) ?? 0) > 0)
        }
    }

    func indexes(of table: String) throws -> [IndexInfo] {
        let rows = try Row.fetchAll(db, sql: "SELECT name, \"unique\", origin FROM pragma_index_list(?)", arguments: [table])
        return try rows.map { row in
            let name: String = row["name"]
            let columns = try String.fetchAll(db, sql: "SELECT name FROM pragma_index_info(?) ORDER BY seqno", arguments: [name])
            let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", arguments: [name])
            let origin: String = row["origin"]
            return IndexInfo(name: name, unique: (row["unique"] as Int?) == 1, fromConstraint: origin != "c", columns: columns, sql: sql)
        }
    }

    func hasRowid(_ table: String) throws -> Bool {
        let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", arguments: [table]) ?? ""
        // Table options come after the body in any order (`WITHOUT ROWID, STRICT`).
        let tokens = SQLText.tokens(sql)
        return !zip(tokens, tokens.dropFirst()).contains { $0.isKeyword("WITHOUT") && $1.isKeyword("ROWID") }
    }

    /// The type SQLite gets for a column: PostgreSQL's auto-numbered key types become SQLite's `integer` row key.
    static func columnType(_ c: Manifest.ColumnDefinition, soleKey: Bool) -> String {
        let t = c.type.lowercased().trimmingCharacters(in: .whitespaces)
        if soleKey, serialTypes.contains(t) || (c.generated?.identity != nil && integerTypes.contains(t)) { return "integer" }
        return c.type
    }

    static let serialTypes: Set<String> = ["serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"]
    static let integerTypes: Set<String> = ["integer", "int", "bigint", "smallint", "int2", "int4", "int8"]

    /// `CONSTRAINT name FOREIGN KEY (...) REFERENCES ...` for a column's reference.
    static func foreignKeyItem(table: String, column: String, _ r: ForeignKeyReference) -> String {
        let name = r.name ?? "\(table)_\(column)_fkey"
        return "CONSTRAINT \(Identifiers.quote(name)) FOREIGN KEY (\(Identifiers.quote(column))) " + referenceClause(
            table: r.table, columns: r.column.map { [$0] } ?? [], onDelete: r.onDelete, onUpdate: r.onUpdate, matchType: r.matchType,
            deferrable: r.deferrable, initiallyDeferred: r.initiallyDeferred)
    }

    static func referenceClause(table: String, columns: [String], onDelete: String?, onUpdate: String?, matchType: String?,
                                deferrable: Bool, initiallyDeferred: Bool) -> String {
        var s = "REFERENCES \(Identifiers.quote(table))"
        if !columns.isEmpty { s += " (\(columns.map(Identifiers.quote).joined(separator: ", ")))" }
        if let onDelete { s += " ON DELETE \(onDelete)" }
        if let onUpdate { s += " ON UPDATE \(onUpdate)" }
        if let matchType { s += " MATCH \(matchType)" }
        if deferrable { s += initiallyDeferred ? " DEFERRABLE INITIALLY DEFERRED" : " DEFERRABLE INITIALLY IMMEDIATE" }
        return s
    }

    static func checkItem(name: String, _ expression: String) -> String {
        "CONSTRAINT \(Identifiers.quote(name)) CHECK (\(expression))"
    }

    /// Primary keys, NOT NULL, defaults and generated expressions go into the column definitions; checks and
    /// foreign keys become named table constraints and unique constraints named unique indexes, so that later
    /// migrations can drop and rename them in place.
    func createTable(_ op: CreateTable) throws {
        let table = op.name
        let keyColumns = op.columns.filter(\.primaryKey).map(\.name) + op.constraints.filter { $0.type == .primaryKey }.flatMap(\.columns)
        let soleKey = keyColumns.count == 1 ? keyColumns[0].lowercased() : nil
        var items: [String] = op.columns.map { c in
            let isKey = keyColumns.contains { $0.lowercased() == c.name.lowercased() }
            let type = Self.columnType(c, soleKey: soleKey == c.name.lowercased())
            var s = "\(q(c.name)) \(type)"
            if c.primaryKey, soleKey != nil { s += " PRIMARY KEY" }
            if (!c.nullable || isKey) && !(soleKey == c.name.lowercased() && type == "integer") { s += " NOT NULL" }
            if let d = c.default { s += " DEFAULT (\(d))" }
            if let g = c.generated?.expression { s += " GENERATED ALWAYS AS (\(g)) STORED" }
            return s
        }
        let named = op.constraints.first { $0.type == .primaryKey }
        if keyColumns.count > 1 || (named != nil && soleKey != nil && !op.columns.contains { $0.primaryKey }) {
            items.append((named.map { "CONSTRAINT \(q($0.name)) " } ?? "") + "PRIMARY KEY (\(keyColumns.map(q).joined(separator: ", ")))")
        }
        for c in op.columns {
            if let check = c.check { items.append(Self.checkItem(name: check.name ?? "\(table)_\(c.name)_check", check.constraint)) }
            if let r = c.references { items.append(Self.foreignKeyItem(table: table, column: c.name, r)) }
        }
        for k in op.constraints {
            switch k.type {
            case .check: items.append(Self.checkItem(name: k.name, k.check ?? "1"))
            case .foreignKey:
                guard let r = k.references else { continue }
                items.append("CONSTRAINT \(q(k.name)) FOREIGN KEY (\(k.columns.map(q).joined(separator: ", "))) " + Self.referenceClause(
                    table: r.table, columns: r.columns, onDelete: r.onDelete, onUpdate: r.onUpdate, matchType: r.matchType,
                    deferrable: k.deferrable, initiallyDeferred: k.initiallyDeferred))
            case .primaryKey, .unique, .exclude: break
            }
        }
        try execute("CREATE TABLE \(q(table)) (\(items.joined(separator: ", ")))")
        try createUniqueIndexes(op)
    }

    func createUniqueIndexes(_ op: CreateTable) throws {
        let table = op.name
        for c in op.columns where c.unique {
            try createIndex(name: "\(table)_\(c.name)_key", table: table, columns: [IndexField(column: c.name)], unique: true, predicate: nil)
        }
        for k in op.constraints where k.type == .unique {
            try createIndex(name: k.name, table: table, columns: k.columns.map { IndexField(column: $0) }, unique: true, predicate: nil)
        }
    }

    func dropTable(_ table: String) throws { try execute("DROP TABLE \(q(table))") }

    func renameTable(_ from: String, to: String) throws { try execute("ALTER TABLE \(q(from)) RENAME TO \(q(to))") }

    func addColumn(_ table: String, name: String, type: String, literalDefault: String?, references: ForeignKeyReference?) throws {
        var s = "ALTER TABLE \(q(table)) ADD COLUMN \(q(name)) \(type)"
        if let literalDefault { s += " DEFAULT \(literalDefault)" }
        if let r = references {
            s += (r.name.map { " CONSTRAINT \(q($0)) " } ?? " ") + Self.referenceClause(
                table: r.table, columns: r.column.map { [$0] } ?? [], onDelete: r.onDelete, onUpdate: r.onUpdate, matchType: r.matchType,
                deferrable: r.deferrable, initiallyDeferred: r.initiallyDeferred)
        }
        try execute(s)
    }

    func addGeneratedColumn(_ table: String, name: String, type: String, expression: String) throws {
        try execute("ALTER TABLE \(q(table)) ADD COLUMN \(q(name)) \(type) GENERATED ALWAYS AS (\(expression)) VIRTUAL")
    }

    func dropColumn(_ table: String, _ column: String) throws {
        try execute("ALTER TABLE \(q(table)) DROP COLUMN \(q(column))")
    }

    /// SQLite's `DROP COLUMN` rewrites every row in one transaction (seconds on a large table, every writer
    /// waiting). A column added at start is the last one, and SQLite reads a row that holds more values than the
    /// table declares by ignoring the extra ones, so the column can instead leave the declaration alone (one
    /// `writable_schema` edit); `RowTrim` then clears the undeclared values in short batches, before anything
    /// could add a column in their place. Falls back to `DROP COLUMN` whenever that reasoning may not hold.
    func dropAddedColumn(_ table: String, _ column: String) throws {
        guard let sql = try tableSQL(table), try canTrim(table, column, sql: sql),
              let trimmed = SQLText.replacingTableItems(in: sql, { items in
                  items.filter { SQLText.isTableConstraint($0) || SQLText.tokens($0).first?.identifier?.lowercased() != column.lowercased() }
              }),
              SQLText.tableItems(trimmed)?.count == (SQLText.tableItems(sql)?.count ?? 0) - 1
        else { return try dropColumn(table, column) }
        try RowTrim.schedule(db, table: table)
        try rewriteTableSQL(table, trimmed)
    }

    /// A rowid table with no generated columns (each declared column is then one stored value, in order), the
    /// column its last, nothing else in the schema naming it, no trigger on the table (the batches' updates
    /// would fire it), and a column for those updates to rewrite.
    private func canTrim(_ table: String, _ column: String, sql: String) throws -> Bool {
        guard try hasRowid(table) else { return false }
        let declared = try Row.fetchAll(db, sql: "SELECT name, hidden FROM pragma_table_xinfo(?)", arguments: [table])
        guard declared.allSatisfy({ ($0["hidden"] as Int?) == 0 }),
              let last: String = declared.last?["name"], last.lowercased() == column.lowercased() else { return false }
        let others = (SQLText.tableItems(sql) ?? []).filter { SQLText.tokens($0).first?.identifier?.lowercased() != column.lowercased() || SQLText.isTableConstraint($0) }
        if others.contains(where: { SQLText.mentionsWord($0, column) }) { return false }
        // Teal's own kept-aside and NOT NULL triggers do nothing when a row is rewritten unchanged.
        let onTable = try Int.fetchOne(db, sql: """
            SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE
            AND name NOT LIKE '\\_teal\\_kept\\_%' ESCAPE '\\' AND name NOT LIKE '\\_teal\\_not\\_null\\_%' ESCAPE '\\'
            """, arguments: [table]) ?? 0
        if onTable > 0 { return false }
        let elsewhere = try String.fetchAll(db, sql: """
            SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND (type IN ('trigger', 'view') OR (type = 'index' AND tbl_name = ? COLLATE NOCASE))
            """, arguments: [table])
        if elsewhere.contains(where: { SQLText.mentionsWord($0, column) }) { return false }
        // The clean-up's cursor starts before the smallest rowid.
        if try Int64.fetchOne(db, sql: "SELECT min(rowid) FROM \(q(table))") == Int64.min { return false }
        return try RowTrim.rewrittenColumn(db, table: table, without: column) != nil
    }

    func renameColumn(_ table: String, from: String, to: String) throws {
        try execute("ALTER TABLE \(q(table)) RENAME COLUMN \(q(from)) TO \(q(to))")
    }

    func createIndex(name: String, table: String, columns: [IndexField], unique: Bool, predicate: String?) throws {
        let cols = columns.map { f -> String in
            var s = q(f.column)
            if let collate = f.collate { s += " COLLATE \(q(collate))" }
            if let sort = f.sort { s += " \(sort)" }
            return s
        }
        var sql = "CREATE \(unique ? "UNIQUE " : "")INDEX \(q(name)) ON \(q(table)) (\(cols.joined(separator: ", ")))"
        if let predicate { sql += " WHERE \(predicate)" }
        try execute(sql)
    }

    func createIndex(name: String, table: String, columns: [String], unique: Bool) throws {
        try createIndex(name: name, table: table, columns: columns.map { IndexField(column: $0) }, unique: unique, predicate: nil)
    }

    func dropIndex(_ name: String) throws { try execute("DROP INDEX IF EXISTS \(q(name))") }

    func tableSQL(_ table: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", arguments: [table])
    }

    func indexSQL(_ name: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ? COLLATE NOCASE", arguments: [name])
    }

    /// Replaces a table's `CREATE TABLE` text with SQLite's documented `writable_schema` procedure, for changes that
    /// do not touch the stored rows (constraints, defaults, constraint names), then bumps the schema version.
    func rewriteTableSQL(_ table: String, _ rewritten: String) throws {
        guard let sql = try tableSQL(table) else { throw SchemaError("table \(table) does not exist") }
        if rewritten == sql { return }
        let version = try Int.fetchOne(db, sql: "PRAGMA schema_version") ?? 0
        try db.execute(sql: "PRAGMA writable_schema = ON")
        do {
            try db.execute(sql: "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ? COLLATE NOCASE", arguments: [rewritten, table])
            try db.execute(sql: "PRAGMA schema_version = \(version + 1)")
        } catch {
            try? db.execute(sql: "PRAGMA writable_schema = OFF")
            throw error
        }
        try db.execute(sql: "PRAGMA writable_schema = OFF")
        db.clearSchemaCache()
        _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM pragma_table_info(?)", arguments: [table])
    }

    func setColumnConstraints(table: String, column: String, notNull: Bool, default defaultSQL: String?, addingCheck check: String?) throws {
        guard let sql = try tableSQL(table),
              let rewritten = SQLText.settingColumnConstraints(in: sql, column: column, notNull: notNull, default: defaultSQL, addingCheck: check)
        else { throw SchemaError("cannot find column \(column) in the definition of table \(table)") }
        try rewriteTableSQL(table, rewritten)
    }

    func namedConstraints(of table: String) throws -> [ConstraintInfo] {
        var result: [ConstraintInfo] = []
        let columnNames = try columns(of: table).map(\.name)
        if let sql = try tableSQL(table), let items = SQLText.tableItems(sql) {
            for item in items {
                guard let name = SQLText.constraintName(ofItem: item) else { continue }
                let words = SQLText.tokens(item).dropFirst(2).first?.text.uppercased() ?? ""
                let kind: ConstraintInfo.Kind = words == "CHECK" ? .check : words == "FOREIGN" ? .foreignKey : words == "PRIMARY" ? .primaryKey : .unique
                result.append(ConstraintInfo(name: name, kind: kind, columns: SQLText.columnsMentioned(byItem: item, among: columnNames), item: item))
            }
        }
        for index in try indexes(of: table) where index.unique && !index.fromConstraint {
            result.append(ConstraintInfo(name: index.name, kind: .unique, columns: index.columns, item: nil))
        }
        return result
    }

    func addCheckConstraint(_ table: String, name: String, expression: String) throws {
        try addTableConstraint(table, item: Self.checkItem(name: name, expression))
    }

    func addForeignKey(_ table: String, name: String, columns: [String], references r: TableForeignKeyReference, deferrable: Bool,
                       initiallyDeferred: Bool) throws {
        try addTableConstraint(table, item: "CONSTRAINT \(q(name)) FOREIGN KEY (\(columns.map(q).joined(separator: ", "))) " + Self.referenceClause(
            table: r.table, columns: r.columns, onDelete: r.onDelete, onUpdate: r.onUpdate, matchType: r.matchType,
            deferrable: deferrable, initiallyDeferred: initiallyDeferred))
    }

    func addTableConstraint(_ table: String, item: String) throws {
        guard let sql = try tableSQL(table), let rewritten = SQLText.replacingTableItems(in: sql, { $0 + [" " + item] }) else {
            throw SchemaError("cannot read the definition of table \(table)")
        }
        try rewriteTableSQL(table, rewritten)
    }

    func removeTableConstraints(_ table: String, where matches: (String) -> Bool) throws -> [String] {
        guard let sql = try tableSQL(table), let items = SQLText.tableItems(sql) else { return [] }
        let removed = items.filter { SQLText.isTableConstraint($0) && matches($0) }
        guard !removed.isEmpty, let rewritten = SQLText.replacingTableItems(in: sql, { $0.filter { !removed.contains($0) } }) else { return [] }
        try rewriteTableSQL(table, rewritten)
        return removed.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    func renameTableConstraint(_ table: String, from: String, to: String) throws {
        guard let sql = try tableSQL(table), let rewritten = SQLText.replacingTableItems(in: sql, { items in
            items.map { item in
                guard SQLText.constraintName(ofItem: item)?.lowercased() == from.lowercased() else { return item }
                let toks = SQLText.tokens(item)
                let rest = item.range(of: toks[1].text).map { String(item[$0.upperBound...]) } ?? ""
                return " CONSTRAINT \(q(to))" + rest
            }
        }) else { throw SchemaError("cannot read the definition of table \(table)") }
        try rewriteTableSQL(table, rewritten)
    }

    func count(_ table: String, where condition: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM \(q(table)) WHERE \(condition)") ?? 0
    }

    func checkExpression(_ expression: String, on table: String) throws {
        _ = try db.makeStatement(sql: "SELECT (\(expression)) FROM \(q(table)) LIMIT 0")
    }

    /// The columns that identify a row of `table` for kept-aside data: its primary key, else its rowid.
    private func rowKey(_ table: String) throws -> [String] {
        let keys = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", arguments: [table])
        return keys.isEmpty ? ["rowid"] : keys
    }

    /// Keyed by the row's primary key (its rowid when it has none). A trigger on the table forgets the value of
    /// a row that is deleted, or follows a row whose key changes, so a later row that reuses the key (SQLite
    /// reuses the largest rowid) never receives a value that was not written for it.
    /// A key column in SQL: `rowid` stays bare (it is not a declared column).
    static func keyName(_ column: String) -> String { column == "rowid" ? "rowid" : Identifiers.quote(column) }

    func keepColumn(table: String, column: String, into kept: String, copying: Bool) throws {
        let keys = try rowKey(table)
        let keyColumns = keys.indices.map { "key\($0)" }
        try execute("CREATE TABLE IF NOT EXISTS \(q(kept)) (\(keyColumns.map(q).joined(separator: ", ")), \"value\", PRIMARY KEY (\(keyColumns.map(q).joined(separator: ", "))))")
        if copying {
            try execute("""
                INSERT OR REPLACE INTO \(q(kept)) (\(keyColumns.map(q).joined(separator: ", ")), "value")
                SELECT \(keys.map(Self.keyName).joined(separator: ", ")), \(q(column)) FROM \(q(table)) WHERE \(q(column)) IS NOT NULL
                """)
        }
        func match(_ row: String) -> String { zip(keyColumns, keys).map { "\(q($0)) = \(row).\(Self.keyName($1))" }.joined(separator: " AND ") }
        let moved = zip(keyColumns, keys).map { "\(q($0)) = NEW.\(Self.keyName($1))" }.joined(separator: ", ")
        let changed = keys.map { "OLD.\(Self.keyName($0)) IS NOT NEW.\(Self.keyName($0))" }.joined(separator: " OR ")
        try execute("DROP TRIGGER IF EXISTS \(q(kept + "_gone"))")
        try execute("DROP TRIGGER IF EXISTS \(q(kept + "_moved"))")
        try execute("CREATE TRIGGER \(q(kept + "_gone")) AFTER DELETE ON \(q(table)) BEGIN DELETE FROM \(q(kept)) WHERE \(match("OLD")); END")
        try execute("""
            CREATE TRIGGER \(q(kept + "_moved")) AFTER UPDATE ON \(q(table)) WHEN \(changed)
            BEGIN DELETE FROM \(q(kept)) WHERE \(match("NEW")); UPDATE \(q(kept)) SET \(moved) WHERE \(match("OLD")); END
            """)
    }

    func mirrorKept(table: String, column: String, into kept: String, triggerPrefix: String) throws {
        let keys = try rowKey(table)
        let keyColumns = keys.indices.map { "key\($0)" }
        let names = keyColumns.map(q).joined(separator: ", ")
        try execute("CREATE TABLE IF NOT EXISTS \(q(kept)) (\(names), \"value\", PRIMARY KEY (\(names)))")
        func row(_ r: String) -> String { keys.map { "\(r).\(Self.keyName($0))" }.joined(separator: ", ") }
        func match(_ r: String) -> String { zip(keyColumns, keys).map { "\(q($0)) = \(r).\(Self.keyName($1))" }.joined(separator: " AND ") }
        let c = q(column)
        try execute("""
            CREATE TRIGGER IF NOT EXISTS \(q(triggerPrefix + "insert")) AFTER INSERT ON \(q(table)) WHEN NEW.\(c) IS NOT NULL
            BEGIN INSERT OR REPLACE INTO \(q(kept)) (\(names), "value") VALUES (\(row("NEW")), NEW.\(c)); END
            """)
        try execute("""
            CREATE TRIGGER IF NOT EXISTS \(q(triggerPrefix + "update")) AFTER UPDATE ON \(q(table))
            BEGIN DELETE FROM \(q(kept)) WHERE \(match("OLD"));
            INSERT OR REPLACE INTO \(q(kept)) (\(names), "value") SELECT \(row("NEW")), NEW.\(c) WHERE NEW.\(c) IS NOT NULL; END
            """)
        try execute("""
            CREATE TRIGGER IF NOT EXISTS \(q(triggerPrefix + "delete")) AFTER DELETE ON \(q(table))
            BEGIN DELETE FROM \(q(kept)) WHERE \(match("OLD")); END
            """)
    }

    func copyKept(table: String, column: String, into kept: String, rowids: ClosedRange<Int64>) throws {
        let keys = try rowKey(table)
        let names = keys.indices.map { q("key\($0)") }.joined(separator: ", ")
        try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO \(q(kept)) (\(names), "value")
            SELECT \(keys.map(Self.keyName).joined(separator: ", ")), \(q(column)) FROM \(q(table))
            WHERE rowid >= ? AND rowid <= ? AND \(q(column)) IS NOT NULL
            """).execute(arguments: [rowids.lowerBound, rowids.upperBound])
    }

    func restoreColumn(table: String, column: String, from kept: String) throws {
        let keys = try rowKey(table)
        let keyColumns = keys.indices.map { "key\($0)" }
        let match = zip(keyColumns, keys).map { "k.\(Identifiers.quote($0)) = \(Identifiers.quote(table)).\(Self.keyName($1))" }.joined(separator: " AND ")
        try execute("DROP TRIGGER IF EXISTS \(q(kept + "_gone"))")
        try execute("DROP TRIGGER IF EXISTS \(q(kept + "_moved"))")
        try execute("""
            UPDATE \(q(table)) SET \(q(column)) = (SELECT k."value" FROM \(q(kept)) k WHERE \(match))
            WHERE EXISTS (SELECT 1 FROM \(q(kept)) k WHERE \(match))
            """)
        try execute("DROP TABLE \(q(kept))")
    }

    /// Installs the insert trigger and the trigger for updates the old shape makes; returns the trigger for
    /// updates the new shape makes, which the engine creates once existing rows are backfilled (see
    /// `SchemaDialect.installDualShape`).
    ///
    /// No trigger needs a flag to stop ping-pong: an update trigger leaves the row alone when the columns it
    /// would recompute from are already what the other direction computes from the row (`inStep`), which is
    /// exactly the case for a row another trigger or the backfill has just filled. This holds whatever the
    /// connection's `recursive_triggers` setting is.
    ///
    /// SQLite compiles every trigger program a statement can reach into that statement when it is prepared, and an
    /// old-shape INSERT reaches all of them (the insert trigger's fill writes the columns both update triggers
    /// watch). So each program here is kept to what correctness needs: the fill has no WHEN (an insert that gives
    /// every column is rare, and its fill then changes nothing), and once the new-shape update trigger exists, the
    /// guard of a column the old shape requires lives in it rather than in a trigger of its own, and gives that
    /// column its value on new-shape inserts too, in place of the fill.
    func installDualShape(table: String, triggerPrefix: String, assignments: [DualAssignment]) throws -> [String] {
        guard !assignments.isEmpty else { return [] }
        let t = q(table)
        let insertName = triggerPrefix + table + "_ins"
        func insertTrigger(_ name: String, filling: [DualAssignment]) -> String {
            let fill: String = filling.map { "\(q($0.target)) = \($0.valueSQL)" }.joined(separator: ", ")
            return """
                CREATE TRIGGER \(q(name)) AFTER INSERT ON \(t)
                BEGIN UPDATE \(t) SET \(fill) WHERE rowid = NEW.rowid; END
                """
        }
        try execute(insertTrigger(insertName, filling: assignments))
        let forward = assignments.filter(\.backfill)
        let reverse = assignments.filter { !$0.backfill }
        let forwardSources = Self.sources(of: forward.filter { !$0.sources.isEmpty })
        let reverseSources = Self.sources(of: reverse.filter { !$0.sources.isEmpty })
        // The old-shape update trigger's write (and the insert fill's) reaches the new-shape update trigger.
        let forwardReachesReverse = forward.contains { a in
            !a.sources.isEmpty && reverseSources.contains { $0.lowercased() == a.target.lowercased() }
        }
        // A column the old shape requires, written NULL by the new shape (which allows NULL there): it gets `down`.
        // Until the backfill ends, a trigger of its own does it. Then, when the column is one the old-shape update
        // trigger recomputes from, and that trigger writes a column the new-shape one watches (so any write of the
        // column reaches the new-shape update trigger through the old-shape one, as the insert fill does), the
        // new-shape update trigger takes the guard over and this one is dropped.
        var folded: [(name: String, assignment: DualAssignment)] = []
        for (n, a) in assignments.enumerated() where !a.backfill && a.requiredInOldShape {
            let name = triggerPrefix + table + "_nn\(n)"
            let value = a.fallback.map { "COALESCE((\(a.expression)), (\($0)))" } ?? "(\(a.expression))"
            try execute("""
                CREATE TRIGGER \(q(name)) AFTER UPDATE OF \(q(a.target)) ON \(t) WHEN NEW.\(q(a.target)) IS NULL
                BEGIN UPDATE \(t) SET \(q(a.target)) = \(value) WHERE rowid = NEW.rowid AND \(value) IS NOT NULL; END
                """)
            // (Never one the new-shape update trigger watches: its own write of NULL over NULL would fire it again.)
            let target = a.target.lowercased()
            if forwardReachesReverse, !a.sources.isEmpty, forwardSources.contains(where: { $0.lowercased() == target }),
               !reverseSources.contains(where: { $0.lowercased() == target }) {
                folded.append((name, a))
            }
        }
        let tableColumns = try columns(of: table).map(\.name)
        if let sql = updateTrigger(table: table, name: triggerPrefix + table + "_upd", direction: forward, opposite: reverse,
                                   columns: tableColumns) {
            try execute(sql)
        }
        let newName = triggerPrefix + table + "_upd_new"
        guard let deferred = updateTrigger(table: table, name: newName, direction: reverse, opposite: forward,
                                           columns: tableColumns, guards: folded.map(\.assignment)) else {
            return []
        }
        // Created and dropped here so a mistake in it surfaces now, before any row is touched.
        try execute(deferred)
        try execute("DROP TRIGGER \(q(newName))")
        guard !folded.isEmpty else { return [deferred] }
        // The guards it takes over go in the same step as it arrives. So does the insert fill of those columns: a
        // new-shape insert leaves them NULL, and the fill's write of the new columns reaches the new-shape update
        // trigger, whose guard gives them `down` over the row as filled (what the guard trigger did after the fill).
        let filling = assignments.filter { a in !folded.contains { $0.assignment.target.lowercased() == a.target.lowercased() } }
        let insert = insertTrigger(insertName, filling: filling)
        try execute(insertTrigger(insertName + "_check", filling: filling))
        try execute("DROP TRIGGER \(q(insertName + "_check"))")
        let drops = (folded.map(\.name) + [insertName]).map { "DROP TRIGGER IF EXISTS \(q($0));" }
        return [(drops + [insert + ";", deferred]).joined(separator: "\n")]
    }

    /// The columns `assignments` read, each once, in order.
    private static func sources(of assignments: [DualAssignment]) -> [String] {
        var sources: [String] = []
        for a in assignments { for s in a.sources where !sources.contains(where: { $0.lowercased() == s.lowercased() }) { sources.append(s) } }
        return sources
    }

    /// The AFTER UPDATE trigger that recomputes the targets of `direction` when a write changed their sources
    /// but not them, unless the row is already in step with `opposite`. `guards` are targets of `direction` the
    /// old shape requires: a NULL there after any write the trigger sees (including the one the opposite
    /// direction's trigger makes after an old-shape write of NULL) gets the value too. The trigger never watches a
    /// guarded column itself, so its own write of NULL over NULL cannot fire it again under `recursive_triggers`.
    private func updateTrigger(table: String, name: String, direction: [DualAssignment], opposite: [DualAssignment],
                               columns: [String], guards: [DualAssignment] = []) -> String? {
        let updatable = direction.filter { !$0.sources.isEmpty }
        guard !updatable.isEmpty else { return nil }
        let t = q(table)
        func value(_ a: DualAssignment) -> String { a.fallback.map { "COALESCE((\(a.expression)), (\($0)))" } ?? "(\(a.expression))" }
        func changed(_ columns: [String]) -> String { columns.map { "NEW.\(q($0)) IS NOT OLD.\(q($0))" }.joined(separator: " OR ") }
        func unchanged(_ a: DualAssignment) -> String { "NEW.\(q(a.target)) IS OLD.\(q(a.target))" }
        func guarded(_ a: DualAssignment) -> Bool { guards.contains { $0.target.lowercased() == a.target.lowercased() } }
        let sources = Self.sources(of: updatable)
        // When every target is computed from the same columns, the WHEN says once that they changed, and inside
        // the body only whether each target was left alone by the write is still open.
        let key: (DualAssignment) -> [String] = { $0.sources.map { $0.lowercased() }.sorted() }
        let common = updatable.allSatisfy { key($0) == key(updatable[0]) }
        func written(_ a: DualAssignment) -> String { common ? unchanged(a) : "(\(changed(a.sources))) AND \(unchanged(a))" }
        let sets: String
        if updatable.count == 1, let a = updatable.first {
            sets = "\(q(a.target)) = \(value(a))"
        } else {
            sets = updatable.map { a in
                let when = guarded(a) ? "\(written(a)) OR \(q(a.target)) IS NULL" : written(a)
                return "\(q(a.target)) = CASE WHEN \(when) THEN \(value(a)) ELSE \(q(a.target)) END"
            }.joined(separator: ", ")
        }
        // In step: every source that the opposite direction fills holds what it computes from the row, and no
        // other source changed. Evaluated in the body, where bare names are the row as just written.
        let mapped = opposite.filter { b in !b.sources.isEmpty && sources.contains { $0.lowercased() == b.target.lowercased() } }
        var whereSQL = "rowid = NEW.rowid"
        var inStepOfNew: String?
        if !mapped.isEmpty {
            let others = sources.filter { s in !mapped.contains { $0.target.lowercased() == s.lowercased() } }
            let inStep: [String] = mapped.map { "\(q($0.target)) IS \(value($0))" } + others.map { "NEW.\(q($0)) IS OLD.\(q($0))" }
            let nulls = guards.map { "\(q($0.target)) IS NULL" }
            whereSQL += " AND (" + (["NOT (\(inStep.joined(separator: " AND ")))"] + nulls).joined(separator: " OR ") + ")"
            // The same test on NEW, in the WHEN: a write that leaves the row in step (the insert fill's, every
            // old-shape insert) then runs no body at all. Only when no expression has a subquery (whose bare names
            // may be another table's); the body keeps its test, since another trigger may have moved the row on
            // since NEW was taken (its write fires this trigger again, on the row as it then is).
            let ofNew = mapped.map { b in SQLText.qualifyingColumns(in: value(b), columns, with: "NEW").map { "NEW.\(q(b.target)) IS \($0)" } }
            if ofNew.allSatisfy({ $0 != nil }) {
                inStepOfNew = (ofNew.compactMap { $0 } + others.map { "NEW.\(q($0)) IS OLD.\(q($0))" }).joined(separator: " AND ")
            }
        }
        var when = common
            ? "(\(changed(updatable[0].sources))) AND (\(updatable.map(unchanged).joined(separator: " OR ")))"
            : updatable.map { "((\(changed($0.sources))) AND \(unchanged($0)))" }.joined(separator: " OR ")
        if let inStepOfNew { when = "(\(when)) AND NOT (\(inStepOfNew))" }
        if !guards.isEmpty { when = "(\(when)) OR " + guards.map { "NEW.\(q($0.target)) IS NULL" }.joined(separator: " OR ") }
        return """
            CREATE TRIGGER \(q(name)) AFTER UPDATE OF \(sources.map(q).joined(separator: ", ")) ON \(t) WHEN \(when)
            BEGIN UPDATE \(t) SET \(sets) WHERE \(whereSQL); END
            """
    }

    func createAliasView(_ view: String, of table: String, triggerPrefix: String) throws {
        let cols = try columns(of: table)
        let keys = cols.filter(\.primaryKey).map(\.name)
        let rowKey = keys.isEmpty ? ["rowid"] : keys
        let selected = (keys.isEmpty ? ["rowid"] : []) + cols.map(\.name)
        try execute("CREATE VIEW \(q(view)) AS SELECT \(selected.map(q).joined(separator: ", ")) FROM \(q(table))")
        let match: String = rowKey.map { "\(q($0)) = OLD.\(q($0))" }.joined(separator: " AND ")
        let values: [String] = cols.map { c in c.defaultSQL.map { "COALESCE(NEW.\(q(c.name)), (\($0)))" } ?? "NEW.\(q(c.name))" }
        try execute("""
            CREATE TRIGGER \(q(triggerPrefix + view + "_vins")) INSTEAD OF INSERT ON \(q(view))
            BEGIN INSERT INTO \(q(table)) (\(cols.map { q($0.name) }.joined(separator: ", "))) VALUES (\(values.joined(separator: ", "))); END
            """)
        let assignAll: String = cols.map { "\(q($0.name)) = NEW.\(q($0.name))" }.joined(separator: ", ")
        try execute("""
            CREATE TRIGGER \(q(triggerPrefix + view + "_vupd")) INSTEAD OF UPDATE ON \(q(view))
            BEGIN UPDATE \(q(table)) SET \(assignAll) WHERE \(match); END
            """)
        try execute("""
            CREATE TRIGGER \(q(triggerPrefix + view + "_vdel")) INSTEAD OF DELETE ON \(q(view))
            BEGIN DELETE FROM \(q(table)) WHERE \(match); END
            """)
    }

    func dropMachinery(triggerPrefix: String, views: [String]) throws {
        for view in views where try viewExists(view) { try execute("DROP VIEW \(q(view))") }
        let escaped = triggerPrefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "_", with: "\\_").replacingOccurrences(of: "%", with: "\\%")
        let triggers = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ? ESCAPE '\\'", arguments: [escaped + "%"])
        for trigger in triggers { try execute("DROP TRIGGER IF EXISTS \(q(trigger))") }
    }
}

/// SQLite's own message for an error, without GRDB's decoration.
enum SQLiteMessage {
    static func of(_ error: any Error) -> String {
        if let e = error as? DatabaseError {
            var text = e.message ?? "\(e.resultCode)"
            if e.resultCode == .SQLITE_BUSY || e.resultCode == .SQLITE_LOCKED { text = "database is locked (another connection held it beyond the busy timeout): \(text)" }
            if let sql = e.sql { text += " (in: \(sql.trimmingCharacters(in: .whitespacesAndNewlines).prefix(300)))" }
            return text
        }
        return "\(error)"
    }
}
