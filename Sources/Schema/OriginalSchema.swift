import Foundation
import GRDB
import Manifest

/// The schema text as it was before a migration started, so that rollback leaves `sqlite_schema` exactly as it
/// found it: an in-place constraint edit re-spells a table's declaration, and a dropped index must come back as
/// it was declared. Kept in `_teal_migration_state` until the migration ends.
enum OriginalSchema {
    static let key = "original_schema"

    private struct Entry: Codable {
        var type: String
        var name: String
        var table: String
        var sql: String
    }

    static func record(_ db: Database, migration: String) throws {
        let entries = try Row.fetchAll(db, sql: """
            SELECT type, name, tbl_name, sql FROM sqlite_master
            WHERE type IN ('table', 'index') AND sql IS NOT NULL AND name NOT LIKE '\\_teal\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
            """).map { Entry(type: $0["type"], name: $0["name"], table: $0["tbl_name"], sql: $0["sql"]) }
        let json = String(decoding: try JSONEncoder().encode(entries), as: UTF8.self)
        try db.execute(sql: "INSERT OR REPLACE INTO \"\(History.state)\" (migration, key, value) VALUES (?, ?, ?)", arguments: [migration, key, json])
    }

    /// Puts back the declaration of every table whose columns are what they were, and every index that is missing.
    /// Columns in `relaxing` (a rollback's old-shape NOT NULL columns) stay without NOT NULL for now: the exact
    /// declaration is put back by `NotNullRestore` once the rows are checked.
    static func restore(_ db: Database, migration: String, dialect: any DialectSession, relaxing: [(table: String, column: String)] = []) throws {
        var pending = relaxing
        if let json = try String.fetchOne(db, sql: "SELECT value FROM \"\(History.state)\" WHERE migration = ? AND key = ?",
                                          arguments: [migration, key]),
           let entries = try? JSONDecoder().decode([Entry].self, from: Data(json.utf8)) {
            for e in entries where e.type == "table" {
                guard let current = try dialect.tableSQL(e.name) else { continue }
                let now = try dialect.columns(of: e.name).map { $0.name.lowercased() }
                guard let items = SQLText.tableItems(e.sql) else { continue }
                let before = items.filter { !SQLText.isTableConstraint($0) }.compactMap { SQLText.tokens($0).first?.identifier?.lowercased() }
                guard before == now else { continue }
                let relaxed = pending.filter { $0.table.lowercased() == e.name.lowercased() }.map(\.column)
                if relaxed.isEmpty {
                    if current != e.sql { try dialect.rewriteTableSQL(e.name, e.sql) }
                    continue
                }
                var text = e.sql
                for column in relaxed {
                    let defaultSQL = try dialect.column(e.name, column)?.defaultSQL
                    text = SQLText.settingColumnConstraints(in: text, column: column, notNull: false, default: defaultSQL, addingCheck: nil) ?? text
                }
                try dialect.rewriteTableSQL(e.name, text)
                try NotNullRestore.schedule(db, table: e.name, columns: relaxed, declaration: e.sql)
                pending.removeAll { $0.table.lowercased() == e.name.lowercased() }
            }
            for e in entries where e.type == "index" {
                if try dialect.tableOfIndex(e.name) == nil, try dialect.tableExists(e.table) { try dialect.execute(e.sql) }
            }
        }
        // Tables whose declaration is not the recorded one: NOT NULL goes back onto the declaration as it is.
        for table in Set(pending.map { $0.table.lowercased() }) {
            guard var text = try dialect.tableSQL(table) else { continue }
            let columns = pending.filter { $0.table.lowercased() == table }.map(\.column)
            for column in columns {
                let defaultSQL = try dialect.column(table, column)?.defaultSQL
                text = SQLText.settingColumnConstraints(in: text, column: column, notNull: true, default: defaultSQL, addingCheck: nil) ?? text
            }
            try NotNullRestore.schedule(db, table: table, columns: columns, declaration: text)
        }
    }
}
