// The retention window of completed migrations
// ============================================
// Complete drops nothing: a dropped column is renamed `_teal_dropped_<tag>_<column>` and a dropped table moves to
// the migration's kept schema `teal_kept_<tag>`. In the transaction that marks the migration completed, each of
// them gets a row in `teal.aside` with the time it was put aside. Once the retention window has passed since then
// it is purged: the column or table is dropped in a DDL transaction of its own (under `lock_timeout`, like every
// DDL of teal's) that also deletes its row, so a purge cut off anywhere leaves rows for exactly what is still
// there and the next purge goes on from them. Only teal's own objects are ever dropped: a row naming a column
// that is not `_teal_dropped_…` or a table outside a `teal_kept_…` schema is refused, every identifier is quoted,
// no CASCADE is used (a table something else still depends on stays, and the purge says why), and a kept schema
// goes only when it is empty.

import Foundation
import Manifest

/// Something a completed migration put aside instead of dropping, as a row of `teal.aside`.
public struct AsideObject: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable { case column, table }
    public var kind: Kind
    /// For a column, the table that held it when it was put aside (in the app schema); for a table, its kept schema.
    public var holder: String
    /// The column's or table's name.
    public var name: String
    public var migration: String

    public var description: String {
        kind == .column ? "column \(holder).\(name) (\(migration))" : "table \(holder).\(name) (\(migration))"
    }
}

/// The SQL of recording and purging what complete put aside, pure.
enum RetentionSQL {
    static let droppedColumnPrefix = "_teal_dropped_"
    static let keptSchemaPrefix = "teal_kept_"

    /// The start every dropped column of the migration tagged `tag` has (see `PlanBuilder.helper`).
    static func droppedColumnPrefix(tag: String) -> String { "\(droppedColumnPrefix)\(tag)_" }

    /// True when `object` is one teal put aside, so that dropping it drops nothing of anyone else's.
    static func isTeals(_ object: AsideObject) -> Bool {
        switch object.kind {
        case .column: object.name.hasPrefix(droppedColumnPrefix)
        case .table: object.holder.hasPrefix(keptSchemaPrefix)
        }
    }

    /// Records, at complete, the dropped columns of the migration `tag` found in `$1` (the app schema). Binds: app
    /// schema, migration, the columns' prefix, when they were put aside (NULL: now).
    static let recordColumns = """
        INSERT INTO teal.aside (schema_name, migration, kind, holder, name, put_aside_at)
        SELECT $1, $2, 'column', c.relname::text, a.attname::text, coalesce($4::timestamptz, now())
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
          AND left(a.attname::text, length($3)) = $3
        ON CONFLICT DO NOTHING
        """

    /// Records a dropped table when it is in its kept schema. Binds: app schema, migration, kept schema, table,
    /// when it was put aside (NULL: now).
    static let recordTable = """
        INSERT INTO teal.aside (schema_name, migration, kind, holder, name, put_aside_at)
        SELECT $1, $2, 'table', $3, $4, coalesce($5::timestamptz, now())
        WHERE to_regclass(quote_ident($3) || '.' || quote_ident($4)) IS NOT NULL
        ON CONFLICT DO NOTHING
        """

    /// Rows whose window has passed at `$2` (epoch seconds; NULL: the server's now) with a window of `$3` seconds, but those
    /// of a migration whose reopen was cut off (it is finished or undone first).
    static let due = """
        SELECT kind, holder, name, migration FROM teal.aside
        WHERE schema_name = $1 AND put_aside_at <= coalesce(to_timestamp($2::float8), now()) - make_interval(secs => $3::float8)
          AND NOT EXISTS (SELECT 1 FROM teal.migrations m WHERE m.schema_name = teal.aside.schema_name AND m.name = teal.aside.migration
                          AND m.state = 'reopening')
        ORDER BY put_aside_at, kind, holder, name
        """

    /// The tables of the app schema (`$1`) holding a column named `$2`: where a dropped column is now, even after
    /// a later migration renamed its table.
    static let columnHolders = """
        SELECT c.relname::text FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1
        """

    /// Deletes the row of a purged object. Binds: app schema, kind, holder, name.
    static let forget = "DELETE FROM teal.aside WHERE schema_name = $1 AND kind = $2 AND holder = $3 AND name = $4"

    /// Drops a dropped column from one table holding it.
    static func dropColumn(schema: String, table: String, _ object: AsideObject) -> String {
        "ALTER TABLE IF EXISTS \(Identifiers.quote(schema)).\(Identifiers.quote(table)) DROP COLUMN IF EXISTS \(Identifiers.quote(object.name))"
    }

    /// Drops a dropped table, refusing (no CASCADE) when anything still depends on it.
    static func dropTable(_ object: AsideObject) -> String {
        "DROP TABLE IF EXISTS \(Identifiers.quote(object.holder)).\(Identifiers.quote(object.name))"
    }

    /// Drops a kept schema when nothing is left in it (rows a rollback kept there stay, and the schema with them).
    static func dropSchemaIfEmpty(_ kept: String) -> String {
        """
        DO $teal$ BEGIN DROP SCHEMA IF EXISTS \(Identifiers.quote(kept));
        EXCEPTION WHEN dependent_objects_still_exist THEN NULL; END $teal$
        """
    }
}
