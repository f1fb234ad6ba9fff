import Manifest

/// `create_table`: the table is created at start (no old shape to keep in step); rollback moves it, rows and
/// all, to the migration's kept schema (`teal_kept_<tag>`), and starting the migration again moves it back.
struct PGCreateTable: PostgresOperation {
    var op: CreateTable

    func plan(_ b: inout PlanBuilder) throws {
        guard b.plan.newShape.table(op.name) == nil else { throw PlanError("table \(op.name) already exists") }
        guard !op.columns.isEmpty else { throw PlanError("create_table \(op.name) has no columns") }
        let kept = PGCreateTable.keptSchema(b)
        b.plan.newShape.tables.append(Shape.Table(name: op.name, physical: op.name,
                                                  columns: op.columns.map { Shape.Column(name: $0.name, physical: $0.name) }))
        // Several `pk` columns make one composite key, declared as a table constraint.
        let keyColumns = op.columns.filter(\.primaryKey).map(\.name)
        var items = try op.columns.map { c -> String in
            var c = c
            if keyColumns.count > 1 { c.primaryKey = false; c.nullable = false }
            return try PGColumnSQL.definition(c, in: b)
        }
        if keyColumns.count > 1 { items.append("PRIMARY KEY (" + keyColumns.map(b.q).joined(separator: ", ") + ")") }
        for c in op.constraints { items.append(try PGColumnSQL.tableConstraint(c, in: b)) }
        var statements = [
            b.when("to_regclass(\(b.lit("\(b.q(kept)).\(b.q(op.name))"))) IS NOT NULL AND to_regclass(\(b.lit(b.qt(op.name)))) IS NULL",
                   "ALTER TABLE \(b.q(kept)).\(b.q(op.name)) SET SCHEMA \(b.q(b.schema));"),
            "CREATE TABLE IF NOT EXISTS \(b.qt(op.name)) (\(items.joined(separator: ", ")))",
        ]
        if let comment = op.comment { statements.append("COMMENT ON TABLE \(b.qt(op.name)) IS \(b.lit(comment))") }
        for c in op.columns { if let comment = c.comment { statements.append("COMMENT ON COLUMN \(b.qt(op.name)).\(b.q(c.name)) IS \(b.lit(comment))") } }
        b.expand(op.name, statements)
        b.undo(op.name, PGCreateTable.putAside(b, op.name))
    }

    /// The schema holding the tables a migration's rollback (created tables) or complete (dropped tables) put
    /// aside, one per migration so that their names, and their indexes' names, never collide.
    static func keptSchema(_ b: PlanBuilder) -> String { RetentionSQL.keptSchemaPrefix + b.tag }

    /// Moves a table, rows, indexes and sequences, into the migration's kept schema; instant.
    static func putAside(_ b: PlanBuilder, _ table: String) -> [String] {
        let kept = keptSchema(b)
        // Only when the table is still in the app schema: run again (a cut-off complete, a reopen completing
        // again), it must not drop what an earlier run put aside.
        return ["CREATE SCHEMA IF NOT EXISTS \(b.q(kept))",
                b.when("to_regclass(\(b.lit(b.qt(table)))) IS NOT NULL",
                       "DROP TABLE IF EXISTS \(b.q(kept)).\(b.q(table)); ALTER TABLE \(b.qt(table)) SET SCHEMA \(b.q(kept));")]
    }
}

/// Column and table-constraint clauses of CREATE TABLE and ADD COLUMN.
enum PGColumnSQL {
    static func definition(_ c: ColumnDefinition, in b: PlanBuilder, withConstraints: Bool = true) throws -> String {
        var sql = "\(b.q(c.name)) \(try type(c.type))"
        if let g = c.generated {
            if let e = g.expression { sql += " GENERATED ALWAYS AS (\(e)) STORED" }
            else if let identity = g.identity {
                sql += " GENERATED \(try b.keyword(identity, ["ALWAYS", "BY DEFAULT"])) AS IDENTITY"
                if let s = g.sequenceOptions { sql += " (\(s))" }
            }
        }
        guard withConstraints else { return sql }
        if c.primaryKey { sql += " PRIMARY KEY" } else if !c.nullable { sql += " NOT NULL" }
        if let d = c.default { sql += " DEFAULT \(d)" }
        if c.unique { sql += " UNIQUE" }
        if let check = c.check {
            sql += (check.name.map { " CONSTRAINT \(b.q($0))" } ?? "") + " CHECK (\(check.constraint))" + (check.noInherit ? " NO INHERIT" : "")
        }
        if let r = c.references {
            sql += (r.name.map { " CONSTRAINT \(b.q($0))" } ?? "") + " " + (try b.references(r, columnOf: c.name))
        }
        return sql
    }

    static func tableConstraint(_ c: TableConstraint, in b: PlanBuilder) throws -> String {
        let cols = "(" + c.columns.map(b.q).joined(separator: ", ") + ")"
        var sql = "CONSTRAINT \(b.q(c.name)) "
        switch c.type {
        case .primaryKey: sql += "PRIMARY KEY \(cols)"
        case .unique: sql += "UNIQUE" + (c.nullsNotDistinct ? " NULLS NOT DISTINCT" : "") + " \(cols)"
        case .check:
            guard let check = c.check else { throw PlanError("check constraint \(c.name) has no check") }
            sql += "CHECK (\(check))" + (c.noInherit ? " NO INHERIT" : "")
        case .foreignKey:
            guard let r = c.references else { throw PlanError("foreign key \(c.name) has no references") }
            sql += "FOREIGN KEY \(cols) REFERENCES \(b.qt(r.table)) (" + r.columns.map(b.q).joined(separator: ", ") + ")"
            if let m = r.matchType { sql += " MATCH \(try b.keyword(m, ["SIMPLE", "FULL"]))" }
            if let d = r.onDelete {
                sql += " ON DELETE \(try b.keyword(d, PlanBuilder.actions))"
                if !r.onDeleteSetColumns.isEmpty { sql += " (" + r.onDeleteSetColumns.map(b.q).joined(separator: ", ") + ")" }
            }
            if let u = r.onUpdate { sql += " ON UPDATE \(try b.keyword(u, PlanBuilder.actions))" }
        case .exclude:
            guard let e = c.exclude else { throw PlanError("exclude constraint \(c.name) has no exclude") }
            sql += "EXCLUDE \(e)"
        }
        if !c.includeColumns.isEmpty, c.type == .unique || c.type == .primaryKey {
            sql += " INCLUDE (" + c.includeColumns.map(b.q).joined(separator: ", ") + ")"
        }
        if let p = c.storageParameters, c.type != .check, c.type != .foreignKey { sql += " WITH (\(p))" }
        if c.deferrable { sql += " DEFERRABLE" + (c.initiallyDeferred ? " INITIALLY DEFERRED" : "") }
        return sql
    }

    /// A type name is pasted into DDL: letters, digits, spaces, `_`, `.`, `(`, `)`, `,`, `[`, `]` and quotes only.
    static func type(_ t: String) throws -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.(),[]\"")
        guard !t.isEmpty, t.allSatisfy({ allowed.contains($0) }) else { throw PlanError("'\(t)' is not a type name") }
        return t
    }
}
