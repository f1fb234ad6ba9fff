import Manifest

/// What `teal validate` checks of a PostgreSQL app's migrations without a database: each is planned, in order,
/// over the tables and columns the ones before it leave (as a start would plan it), so an operation on a table
/// or column that will not exist, a name that clashes, or a keyword outside its list is a `path:line` error
/// before anything runs. A migration with raw `sql` ends the check: what it creates is known only to the
/// database. (Expressions in `up`/`down`/`check` are compiled by PostgreSQL when the migration starts.)
public enum PostgresValidation {
    public static func check(_ migrations: [Migration], schema: String = "public") -> [Diagnostic] {
        var catalog = Catalog(tables: [])
        for m in migrations {
            let plan: MigrationPlan
            do {
                plan = try MigrationPlan.make(m, catalog: catalog, schema: schema)
            } catch let error as PlanError {
                let path = m.source?.path ?? m.name
                let line = m.source?.line(operation: error.operation) ?? 1
                return [Diagnostic(path: path, line: line, message: error.description)]
            } catch {
                return [Diagnostic(path: m.source?.path ?? m.name, message: "\(error)")]
            }
            if m.operations.contains(where: { if case .sql = $0 { true } else { false } }) { break }
            catalog = after(plan, m, catalog)
        }
        return []
    }

    /// The catalog once `m` is complete: the new shape's tables under their final names, with the types the
    /// old catalog or the migration's own definitions give.
    static func after(_ plan: MigrationPlan, _ m: Migration, _ catalog: Catalog) -> Catalog {
        var defined: [String: [String: ColumnDefinition]] = [:]
        var keys: [String: [String]] = [:]
        for op in m.operations {
            switch op {
            case .createTable(let t):
                for c in t.columns { defined[t.name, default: [:]][c.name] = c }
                keys[t.name] = t.columns.filter(\.primaryKey).map(\.name)
                    + t.constraints.filter { $0.type == .primaryKey }.flatMap(\.columns)
            case .addColumn(let a): defined[a.table, default: [:]][a.column.name] = a.column
            default: break
            }
        }
        return Catalog(tables: plan.newShape.tables.map { t in
            let old = catalog.table(t.physical)
            let columns = t.columns.map { c -> Catalog.Column in
                if let o = old?.column(c.physical) { return Catalog.Column(name: c.name, type: o.type, notNull: o.notNull, defaultSQL: o.defaultSQL) }
                let d = defined[t.name]?[c.name] ?? defined[t.physical]?[c.name]
                return Catalog.Column(name: c.name, type: d?.type ?? "text", notNull: !(d?.nullable ?? true), defaultSQL: d?.default)
            }
            let key = old.map { o in o.primaryKey.compactMap { k in t.columns.first { $0.physical == k }?.name } } ?? keys[t.name] ?? []
            return Catalog.Table(name: t.name, columns: columns, primaryKey: key)
        })
    }
}
