import Foundation
import Schema

/// The app schema's tables as PostgreSQL reports them, read once when a migration starts and stored with it, so
/// that complete and rollback (and a start resumed after a crash) plan from the same facts.
struct Catalog: Codable, Sendable, Hashable {
    struct Column: Codable, Sendable, Hashable {
        var name: String
        /// `format_type` of the column: `integer`, `text`, `character varying(20)`.
        var type: String
        var notNull: Bool
        var defaultSQL: String?
        /// `a` (GENERATED ALWAYS AS IDENTITY) or `d` (BY DEFAULT); nil for no identity.
        var identity: String? = nil
    }

    struct Table: Codable, Sendable, Hashable {
        var name: String
        var columns: [Column]
        var primaryKey: [String]

        func column(_ name: String) -> Column? { columns.first { $0.name == name } }
        /// Columns an app sees: teal's own (`_teal_…`) are hidden.
        var visibleColumns: [Column] { columns.filter { !$0.name.hasPrefix("_teal_") } }
    }

    /// An index of the app schema, with the constraint it backs (if any), for carrying it onto a column's twin.
    struct Index: Codable, Sendable, Hashable {
        var name: String
        var table: String
        /// `pg_get_indexdef`: `CREATE [UNIQUE] INDEX name ON schema.table USING method (...) [WHERE ...]`.
        var definition: String
        /// The constraint it backs, and its kind: `p` (primary key), `u` (unique), `x` (exclusion); nil for a plain index.
        var constraint: String?
        var constraintType: String?
    }

    /// A foreign key of the app schema.
    struct ForeignKey: Codable, Sendable, Hashable {
        var name: String
        var table: String
        var referencedTable: String
        var referencedColumns: [String]
        /// `pg_get_constraintdef`: `FOREIGN KEY (a) REFERENCES t(b) ...`.
        var definition: String
    }

    /// A check constraint of the app schema (teal's own, `_teal_…`, left out).
    struct Check: Codable, Sendable, Hashable {
        var name: String
        var table: String
        /// The columns it names.
        var columns: [String]
        /// `pg_get_constraintdef`: `CHECK ((age >= 0))`, with `NO INHERIT` when so.
        var definition: String
    }

    var tables: [Table]
    /// Index name → its table.
    var indexes: [String: String] = [:]
    /// Indexes and foreign keys in detail (nil in catalogs stored before they were read).
    var indexDetails: [Index]? = nil
    var foreignKeys: [ForeignKey]? = nil
    var checks: [Check]? = nil

    /// The check constraints of `table` that name `column`.
    func checks(on table: String, naming column: String) -> [Check] {
        (checks ?? []).filter { $0.table == table && $0.columns.contains(column) }
    }

    /// The indexes of `table` whose key, expressions or predicate name `column`.
    func indexes(on table: String, covering column: String) -> [Index] {
        (indexDetails ?? []).filter { index in
            guard index.table == table, let tail = Self.indexTail(index.definition) else { return false }
            return SQLText.replacingColumn(in: tail, column, with: "_teal_probe") != tail
        }
    }

    /// The foreign keys (of any table) that reference `table`'s `column`.
    func foreignKeys(referencing table: String, _ column: String) -> [ForeignKey] {
        (foreignKeys ?? []).filter { $0.referencedTable == table && $0.referencedColumns.contains(column) }
    }

    /// The foreign keys of `table` whose own columns include `column` (read from `FOREIGN KEY (...)`).
    func foreignKeys(from table: String, naming column: String) -> [ForeignKey] {
        (foreignKeys ?? []).filter { fk in
            guard fk.table == table, let r = fk.definition.range(of: " REFERENCES ") else { return false }
            let own = String(fk.definition[..<r.lowerBound])
            return SQLText.replacingColumn(in: own, column, with: "_teal_probe") != own
        }
    }

    /// What follows `ON schema.table` in an index definition: `USING method (...) ...`.
    static func indexTail(_ definition: String) -> String? {
        definition.range(of: " USING ").map { String(definition[$0.upperBound...]) }
    }

    func table(_ name: String) -> Table? { tables.first { $0.name == name } }

    /// Reads `schema`'s ordinary and partitioned tables, their columns in order and primary keys.
    static func read(_ session: PostgresSession, schema: String) async throws -> Catalog {
        // Six catalog queries in one round trip.
        let answers = try await session.rowsOfEach([
            .init(columns: ["c.relname::text", "a.attname::text", "format_type(a.atttypid, a.atttypmod)", "a.attnotnull::text",
                            "pg_get_expr(d.adbin, d.adrelid)", "a.attidentity::text"], from: """
                FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
                WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
                """, orderBy: "c.relname, a.attnum", binds: [schema]),
            .init(columns: ["c.relname::text", "a.attname::text"], from: """
                FROM pg_index i
                JOIN pg_class c ON c.oid = i.indrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                WHERE n.nspname = $1 AND i.indisprimary
                """, orderBy: "c.relname, k.ord", binds: [schema]),
            .init(columns: ["i.relname::text", "t.relname::text"], from: """
                FROM pg_index x
                JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
                JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1
                """, binds: [schema]),
            .init(columns: ["i.relname::text", "t.relname::text", "pg_get_indexdef(x.indexrelid)", "c.conname::text", "c.contype::text"], from: """
                FROM pg_index x
                JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
                JOIN pg_namespace n ON n.oid = t.relnamespace
                LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u', 'x')
                WHERE n.nspname = $1
                """, orderBy: "i.relname::text", binds: [schema]),
            .init(columns: ["c.conname::text", "t.relname::text", "r.relname::text", """
                (SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum)
                """, "pg_get_constraintdef(c.oid)"], from: """
                FROM pg_constraint c
                JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
                JOIN pg_namespace n ON n.oid = r.relnamespace
                WHERE c.contype = 'f' AND n.nspname = $1
                """, orderBy: "c.conname::text", binds: [schema]),
            .init(columns: ["c.conname::text", "t.relname::text", """
                (SELECT string_agg(a.attname::text, ',' ORDER BY a.attnum) FROM pg_attribute a
                 WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey))
                """, "pg_get_constraintdef(c.oid)"], from: """
                FROM pg_constraint c
                JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
                WHERE c.contype = 'c' AND n.nspname = $1 AND left(c.conname::text, 6) <> '_teal_'
                """, orderBy: "t.relname::text, c.conname::text", binds: [schema]),
        ])
        let (columns, keys, indexRows, detailRows, keyRows, checkRows) = (answers[0], answers[1], answers[2], answers[3], answers[4], answers[5])
        var order: [String] = []
        var byTable: [String: Table] = [:]
        for row in columns {
            let t = row[0] ?? ""
            if byTable[t] == nil { order.append(t); byTable[t] = Table(name: t, columns: [], primaryKey: []) }
            let identity = row.count > 5 ? row[5].flatMap { $0.isEmpty ? nil : $0 } : nil
            byTable[t]!.columns.append(Column(name: row[1] ?? "", type: row[2] ?? "text", notNull: row[3] == "true", defaultSQL: row[4],
                                              identity: identity))
        }
        for row in keys { byTable[row[0] ?? ""]?.primaryKey.append(row[1] ?? "") }
        var indexes: [String: String] = [:]
        for row in indexRows { indexes[row[0] ?? ""] = row[1] ?? "" }
        let details = detailRows.map { Index(name: $0[0] ?? "", table: $0[1] ?? "", definition: $0[2] ?? "", constraint: $0[3], constraintType: $0[4]) }
        let foreignKeys = keyRows.map {
            ForeignKey(name: $0[0] ?? "", table: $0[1] ?? "", referencedTable: $0[2] ?? "",
                       referencedColumns: ($0[3] ?? "").split(separator: ",").map(String.init), definition: $0[4] ?? "")
        }
        let checks = checkRows.map {
            Check(name: $0[0] ?? "", table: $0[1] ?? "", columns: ($0[2] ?? "").split(separator: ",").map(String.init), definition: $0[3] ?? "")
        }
        return Catalog(tables: order.compactMap { byTable[$0] }, indexes: indexes, indexDetails: details, foreignKeys: foreignKeys, checks: checks)
    }
}

/// One shape of the database as an app sees it: per table, the names it uses and the physical table and
/// columns behind them. A version schema holds one view per table of a shape.
struct Shape: Codable, Sendable, Hashable {
    struct Column: Codable, Sendable, Hashable {
        var name: String
        var physical: String
    }

    struct Table: Codable, Sendable, Hashable {
        var name: String
        var physical: String
        var columns: [Column]

        func column(_ name: String) -> Column? { columns.first { $0.name == name } }
    }

    var tables: [Table]

    func table(_ name: String) -> Table? { tables.first { $0.name == name } }

    mutating func update(_ name: String, _ change: (inout Table) -> Void) {
        guard let i = tables.firstIndex(where: { $0.name == name }) else { return }
        change(&tables[i])
    }

    /// The shape of a catalog with no migration in flight: every table and visible column under its own name.
    init(_ catalog: Catalog) {
        tables = catalog.tables.filter { !$0.name.hasPrefix("_teal_") }.map { t in
            Table(name: t.name, physical: t.name, columns: t.visibleColumns.map { Column(name: $0.name, physical: $0.name) })
        }
    }

    init(tables: [Table]) { self.tables = tables }
}
