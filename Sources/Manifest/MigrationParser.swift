import Yams

/// Reads schema/NNNN_name.yaml (or pgroll's NNNN_name.json) strictly, in pgroll's vocabulary.
public enum MigrationParser {
    /// The file extensions a migration may have.
    public static let extensions = [".yaml", ".json"]

    /// The stem of a migration file name, or nil when the name is not `NNNN_name.yaml` / `NNNN_name.json`.
    public static func stem(of fileName: String) -> String? {
        guard let ext = extensions.first(where: { fileName.hasSuffix($0) }) else { return nil }
        let stem = String(fileName.dropLast(ext.count))
        return Identifiers.parseMigrationStem(stem) == nil ? nil : stem
    }

    /// Parses one migration file. `fileName` is the file's name (`0002_split_name.yaml`), `path` what errors show.
    public static func parse(_ bytes: [UInt8], fileName: String, path: String, checksum: String) -> Result<Migration, ManifestErrors> {
        let sink = DiagnosticSink()
        let migration = parse(bytes, fileName: fileName, path: path, checksum: checksum, sink: sink)
        if let migration, sink.isEmpty { return .success(migration) }
        return .failure(ManifestErrors(sink.items))
    }

    static func parse(_ bytes: [UInt8], fileName: String, path: String, checksum: String, sink: DiagnosticSink) -> Migration? {
        guard let stem = stem(of: fileName), let (number, _) = Identifiers.parseMigrationStem(stem) else {
            sink.add(path: path, "migration files are named NNNN_name.yaml or NNNN_name.json (four digits, then lowercase letters, digits and _)")
            return nil
        }
        let y = StrictYAML(path: path, sink: sink)
        guard let root = y.compose(bytes) else { return nil }
        guard let top = y.mapping(root, "migration", allowed: ["name", "operations", "version_schema"], required: ["operations"]),
              let opsNode = top["operations"], let items = y.list(opsNode, "operations") else { return nil }
        if items.isEmpty { y.error(opsNode, "operations must not be empty") }
        let before = sink.items.count
        let declaredName = top["name"].flatMap { y.string($0, "name") }
        let versionSchema = top["version_schema"].flatMap { y.string($0, "version_schema") }
        if let versionSchema, let node = top["version_schema"], !Identifiers.isValidSQLIdentifier(versionSchema) {
            y.error(node, "version_schema '\(versionSchema)' is not a valid SQL identifier")
        }
        var operations: [Operation] = []
        var source = MigrationSource(path: path)
        for (index, item) in items.enumerated() {
            guard let op = operation(item, index: index, y: y) else { continue }
            operations.append(op)
            source.operationLines.append(item.mark?.line ?? 1)
            var lines: [String: Int] = [:]
            if let body = item.mapping?.first?.value { collectLines(body, prefix: "", into: &lines) }
            source.fieldLines.append(lines)
        }
        guard sink.items.count == before else { return nil }
        return Migration(name: stem, number: number, checksum: checksum, operations: operations, versionSchema: versionSchema,
                         declaredName: declaredName, source: source)
    }

    /// Records the line of every node under `node` by its dotted path.
    private static func collectLines(_ node: Node, prefix: String, into lines: inout [String: Int]) {
        if !prefix.isEmpty, let line = node.mark?.line { lines[prefix] = line }
        if let map = node.mapping {
            for (key, value) in map {
                guard let name = key.scalar?.string else { continue }
                let path = prefix.isEmpty ? name : "\(prefix).\(name)"
                if let line = key.mark?.line { lines[path] = line }
                collectLines(value, prefix: path, into: &lines)
                if let line = key.mark?.line { lines[path] = line }
            }
        } else if let seq = node.sequence {
            for (i, item) in seq.enumerated() { collectLines(item, prefix: "\(prefix)[\(i)]", into: &lines) }
        }
    }

    static let foreignKeyActions = ["CASCADE", "NO ACTION", "RESTRICT", "SET DEFAULT", "SET NULL"]
    static let matchTypes = ["FULL", "PARTIAL", "SIMPLE"]

    private static func operation(_ node: Node, index: Int, y: StrictYAML) -> Operation? {
        guard let map = node.mapping, map.count == 1, let (keyNode, body) = map.first.map({ ($0.key, $0.value) }),
              let kind = keyNode.scalar?.string else {
            y.error(node, "operations[\(index)] must be a mapping with exactly one operation key (\(Operation.kinds.joined(separator: ", ")))")
            return nil
        }
        let w = "operations[\(index)].\(kind)"
        let r = Reader(y: y, w: w)
        let before = y.sink.items.count
        func ok() -> Bool { y.sink.items.count == before }

        switch kind {
        case "create_table":
            // `table` is teal's earlier spelling of pgroll's `name`.
            guard let m = r.fields(body, ["name", "table", "columns", "constraints", "comment"], ["columns"]) else { return nil }
            let name = r.ident(m, "name") ?? r.ident(m, "table")
            if m["name"] == nil && m["table"] == nil { y.error(body, "\(w) is missing required key 'name'") }
            if m["name"] != nil && m["table"] != nil { y.error(m["table"], "\(w) has both 'name' and 'table'; use 'name'") }
            guard let colsNode = m["columns"], let cols = y.list(colsNode, "\(w).columns") else { return nil }
            if cols.isEmpty { y.error(colsNode, "\(w).columns must not be empty") }
            let columns = cols.enumerated().compactMap { column($1, "\(w).columns[\($0)]", y: y) }
            let names = columns.map { $0.name.lowercased() }
            if Set(names).count != names.count { y.error(colsNode, "\(w).columns has duplicate column names") }
            var constraints: [TableConstraint] = []
            if let cNode = m["constraints"], let items = y.list(cNode, "\(w).constraints") {
                constraints = items.enumerated().compactMap { tableConstraint($1, "\(w).constraints[\($0)]", y: y) }
                for (c, item) in zip(constraints, items) {
                    for col in c.columns where !names.contains(col.lowercased()) {
                        y.error(item, "\(w): constraint \(c.name) names column \(col), which the table does not have")
                    }
                }
            }
            let comment = r.optionalText(m, "comment")
            guard ok(), let name else { return nil }
            return .createTable(CreateTable(name: name, columns: columns, constraints: constraints, comment: comment ?? nil))
        case "drop_table":
            guard let m = r.fields(body, ["name", "table"], []) else { return nil }
            let name = r.ident(m, "name") ?? r.ident(m, "table")
            if m["name"] == nil && m["table"] == nil { y.error(body, "\(w) is missing required key 'name'") }
            guard ok(), let name else { return nil }
            return .dropTable(DropTable(name: name))
        case "rename_table":
            guard let m = r.fields(body, ["from", "to"], ["from", "to"]), let from = r.ident(m, "from"), let to = r.ident(m, "to") else { return nil }
            return .renameTable(RenameTable(from: from, to: to))
        case "add_column":
            guard let m = r.fields(body, ["table", "column", "up"], ["table", "column"]), let table = r.ident(m, "table"),
                  let colNode = m["column"], let col = column(colNode, "\(w).column", y: y) else { return nil }
            let up = r.text(m, "up")
            guard ok() else { return nil }
            return .addColumn(AddColumn(table: table, column: col, up: up))
        case "drop_column":
            guard let m = r.fields(body, ["table", "column", "down"], ["table", "column"]), let table = r.ident(m, "table"),
                  let col = r.ident(m, "column") else { return nil }
            let down = r.text(m, "down")
            guard ok() else { return nil }
            return .dropColumn(DropColumn(table: table, column: col, down: down))
        case "rename_column":
            guard let m = r.fields(body, ["table", "from", "to"], ["table", "from", "to"]), let table = r.ident(m, "table"),
                  let from = r.ident(m, "from"), let to = r.ident(m, "to") else { return nil }
            return .renameColumn(RenameColumn(table: table, from: from, to: to))
        case "alter_column":
            let keys = ["table", "column", "name", "type", "nullable", "default", "unique", "check", "references", "comment", "up", "down"]
            guard let m = r.fields(body, keys, ["table", "column"]), let table = r.ident(m, "table"), let col = r.ident(m, "column") else { return nil }
            let type = r.text(m, "type")
            if let type, let typeNode = m["type"], !isPlausibleType(type) {
                y.error(typeNode, "\(w).type '\(type)' is not a column type (letters, digits, spaces, parentheses and commas)")
            }
            let def = r.optionalText(m, "default")
            let comment = r.optionalText(m, "comment")
            var unique: UniqueConstraint?
            if let u = m["unique"] {
                if u.mapping != nil {
                    if let um = y.mapping(u, "\(w).unique", allowed: ["name"]) { unique = UniqueConstraint(name: r.ident(um, "name")) }
                } else if let flag = y.bool(u, "\(w).unique") {
                    if flag { unique = UniqueConstraint() } else { y.error(u, "\(w).unique: false changes nothing; drop a unique constraint with drop_constraint") }
                }
            }
            let check = m["check"].flatMap { checkConstraint($0, "\(w).check", y: y) }
            let references = m["references"].flatMap { reference($0, "\(w).references", y: y) }
            let op = AlterColumn(table: table, column: col, name: r.ident(m, "name"), type: type, nullable: r.flag(m, "nullable"),
                                 default: def ?? nil, dropDefault: def == .some(nil), unique: unique, check: check, references: references,
                                 comment: comment ?? nil, dropComment: comment == .some(nil), up: r.text(m, "up"), down: r.text(m, "down"))
            guard ok() else { return nil }
            if op.name == nil && !op.changesShape && op.comment == nil && !op.dropComment {
                y.error(body, "\(w) changes nothing: give at least one of type, nullable, default, unique, check, references, comment (or name)")
                return nil
            }
            return .alterColumn(op)
        case "create_index":
            guard let m = r.fields(body, ["name", "table", "columns", "unique", "method", "predicate", "storage_parameters"], ["name", "table", "columns"]),
                  let name = r.ident(m, "name"), let table = r.ident(m, "table"), let colsNode = m["columns"] else { return nil }
            var fields: [IndexField] = []
            if let items = colsNode.sequence {
                for (i, item) in items.enumerated() {
                    let wi = "\(w).columns[\(i)]"
                    if item.mapping != nil {
                        // pgroll's current form: `- column: name` with opclass, sort, nulls, collate.
                        guard let f = y.mapping(item, wi, allowed: ["column", "opclass", "sort", "nulls", "collate"], required: ["column"]),
                              let c = f["column"].flatMap({ y.identifier($0, "\(wi).column") }) else { continue }
                        var opclass: String?
                        if let o = f["opclass"] {
                            if o.mapping != nil {
                                let om = y.mapping(o, "\(wi).opclass", allowed: ["name", "params"])
                                opclass = om?["name"].flatMap { y.string($0, "\(wi).opclass.name") } ?? ""
                            } else {
                                opclass = y.string(o, "\(wi).opclass")
                            }
                        }
                        let sort = r.choice(f, "sort", ["ASC", "DESC"], prefix: wi)
                        let nulls = r.choice(f, "nulls", ["FIRST", "LAST"], prefix: wi)
                        let collate = f["collate"].flatMap { y.identifier($0, "\(wi).collate") }
                        fields.append(IndexField(column: c, opclass: opclass, sort: sort, nulls: nulls, collate: collate))
                    } else if let c = y.identifier(item, wi) {
                        fields.append(IndexField(column: c))
                    }
                }
                if items.isEmpty { y.error(colsNode, "\(w).columns must not be empty") }
            } else if let map = colsNode.mapping {
                // pgroll's earlier form: a mapping from column name to its settings.
                for (key, value) in map {
                    guard let c = y.identifier(key, "\(w).columns") else { continue }
                    if !StrictYAML.isNull(value), value.mapping?.isEmpty == false {
                        _ = y.mapping(value, "\(w).columns.\(c)", allowed: [])
                    }
                    fields.append(IndexField(column: c))
                }
            } else {
                y.error(colsNode, "\(w).columns must be a list")
            }
            let unique = r.flag(m, "unique") ?? false
            let method = m["method"].flatMap { y.string($0, "\(w).method") }.map { $0.lowercased() }
            if let method, let node = m["method"], !["btree", "hash", "gin", "gist", "brin", "spgist"].contains(method) {
                y.error(node, "\(w).method '\(method)' is not one of btree, hash, gin, gist, brin, spgist")
            }
            let predicate = r.text(m, "predicate")
            let storage = r.text(m, "storage_parameters")
            guard ok() else { return nil }
            return .createIndex(CreateIndex(name: name, table: table, columns: fields, unique: unique, method: method,
                                            predicate: predicate, storageParameters: storage))
        case "drop_index":
            guard let m = r.fields(body, ["name"], ["name"]), let name = r.ident(m, "name") else { return nil }
            return .dropIndex(DropIndex(name: name))
        case "create_constraint":
            let keys = ["table", "name", "type", "columns", "check", "references", "up", "down", "no_inherit", "index_parameters"]
            guard let m = r.fields(body, keys, ["table", "name", "type", "columns"]), let table = r.ident(m, "table"),
                  let name = r.ident(m, "name") else { return nil }
            let type = r.choice(m, "type", ["check", "unique", "foreign_key", "primary_key"], prefix: w, lowercase: true)
                .flatMap(ConstraintType.init(rawValue:))
            let columns = r.identList(m, "columns") ?? []
            if m["columns"] != nil && columns.isEmpty { y.error(m["columns"], "\(w).columns must not be empty") }
            let check = r.text(m, "check")
            let refs = m["references"].flatMap { tableReference($0, "\(w).references", y: y) }
            let up = r.columnMap(m, "up") ?? [:]
            let down = r.columnMap(m, "down") ?? [:]
            for (key, node) in [("up", m["up"]), ("down", m["down"])] {
                for c in (key == "up" ? up : down).keys where !columns.contains(c) {
                    y.error(node, "\(w).\(key) names column \(c), which is not among the constraint's columns")
                }
            }
            let params = m["index_parameters"].flatMap { indexParameters($0, "\(w).index_parameters", y: y) }
            let noInherit = r.flag(m, "no_inherit") ?? false
            guard ok(), let type else { return nil }
            switch type {
            case .check where check == nil: y.error(body, "\(w): a check constraint needs `check`"); return nil
            case .foreignKey where refs == nil: y.error(body, "\(w): a foreign_key constraint needs `references`"); return nil
            default: break
            }
            if type != .check && check != nil { y.error(m["check"], "\(w).check is only for type check"); return nil }
            if type != .foreignKey && refs != nil { y.error(m["references"], "\(w).references is only for type foreign_key"); return nil }
            return .createConstraint(CreateConstraint(table: table, name: name, type: type, columns: columns, check: check, references: refs,
                                                      up: up, down: down, noInherit: noInherit, includeColumns: params?.include ?? [],
                                                      storageParameters: params?.storage, tablespace: params?.tablespace))
        case "drop_constraint":
            guard let m = r.fields(body, ["table", "name", "up", "down"], ["table", "name"]), let table = r.ident(m, "table"),
                  let name = r.ident(m, "name") else { return nil }
            let op = DropConstraint(table: table, name: name, up: r.text(m, "up"), down: r.text(m, "down"))
            guard ok() else { return nil }
            return .dropConstraint(op)
        case "drop_multicolumn_constraint":
            guard let m = r.fields(body, ["table", "name", "up", "down"], ["table", "name"]), let table = r.ident(m, "table"),
                  let name = r.ident(m, "name") else { return nil }
            let op = DropMultiColumnConstraint(table: table, name: name, up: r.columnMap(m, "up") ?? [:], down: r.columnMap(m, "down") ?? [:])
            guard ok() else { return nil }
            return .dropMultiColumnConstraint(op)
        case "rename_constraint":
            guard let m = r.fields(body, ["table", "from", "to"], ["table", "from", "to"]), let table = r.ident(m, "table"),
                  let from = r.ident(m, "from"), let to = r.ident(m, "to") else { return nil }
            return .renameConstraint(RenameConstraint(table: table, from: from, to: to))
        case "set_replica_identity":
            guard let m = r.fields(body, ["table", "identity"], ["table", "identity"]), let table = r.ident(m, "table"),
                  let idNode = m["identity"], let im = y.mapping(idNode, "\(w).identity", allowed: ["type", "index"], required: ["type"]) else { return nil }
            let type = Reader(y: y, w: "\(w).identity").choice(im, "type", ["default", "full", "nothing", "index"], prefix: "\(w).identity", lowercase: true)
            let index = im["index"].flatMap { y.identifier($0, "\(w).identity.index") }
            if type == "index" && index == nil { y.error(idNode, "\(w).identity: type index needs `index`") }
            guard ok(), let type else { return nil }
            return .setReplicaIdentity(SetReplicaIdentity(table: table, type: type, index: index))
        case "sql":
            guard let m = r.fields(body, ["up", "down", "onComplete"], ["up"]), let up = r.text(m, "up") else { return nil }
            let down = r.text(m, "down")
            let onComplete = r.flag(m, "onComplete") ?? false
            if onComplete && down != nil { y.error(m["down"], "\(w): down cannot be combined with onComplete (as in pgroll)") }
            guard ok() else { return nil }
            return .sql(RawSQL(up: up, down: down, onComplete: onComplete))
        default:
            y.error(keyNode, "unknown operation '\(kind)' (expected one of: \(Operation.kinds.joined(separator: ", ")))")
            return nil
        }
    }

    /// Field readers for one operation; each records a diagnostic on a bad value.
    private struct Reader {
        let y: StrictYAML
        let w: String

        func fields(_ body: Node, _ allowed: [String], _ required: [String]) -> [String: Node]? {
            y.mapping(body, w, allowed: allowed, required: required)
        }
        func ident(_ m: [String: Node], _ key: String) -> String? { m[key].flatMap { y.identifier($0, "\(w).\(key)") } }
        func text(_ m: [String: Node], _ key: String) -> String? { m[key].flatMap { y.string($0, "\(w).\(key)") } }
        /// `.some(nil)` for an explicit null (pgroll's "drop it"), nil when absent.
        func optionalText(_ m: [String: Node], _ key: String) -> String?? {
            guard let node = m[key] else { return nil }
            if StrictYAML.isNull(node) { return .some(nil) }
            return y.string(node, "\(w).\(key)").map { .some($0) } ?? nil
        }
        func flag(_ m: [String: Node], _ key: String) -> Bool? { m[key].flatMap { y.bool($0, "\(w).\(key)") } }
        func identList(_ m: [String: Node], _ key: String) -> [String]? {
            guard let node = m[key], let items = y.list(node, "\(w).\(key)") else { return nil }
            let names = items.enumerated().compactMap { y.identifier($1, "\(w).\(key)[\($0)]") }
            return names.count == items.count ? names : nil
        }
        /// A mapping from column name to an SQL expression (create_constraint's `up` and `down`).
        func columnMap(_ m: [String: Node], _ key: String) -> [String: String]? {
            guard let node = m[key] else { return nil }
            guard let map = y.stringMap(node, "\(w).\(key)") else { return nil }
            for name in map.keys where !Identifiers.isValidSQLIdentifier(name) {
                y.error(node, "\(w).\(key): '\(name)' is not a valid SQL identifier")
            }
            return map
        }
        func choice(_ m: [String: Node], _ key: String, _ values: [String], prefix: String, lowercase: Bool = false) -> String? {
            guard let node = m[key], let text = y.string(node, "\(prefix).\(key)") else { return nil }
            let normalised = lowercase ? text.lowercased() : text.uppercased()
            guard values.contains(normalised) else {
                y.error(node, "\(prefix).\(key) '\(text)' is not one of \(values.joined(separator: ", "))")
                return nil
            }
            return normalised
        }
    }

    private static func column(_ node: Node, _ w: String, y: StrictYAML) -> ColumnDefinition? {
        // `primary_key` is teal's earlier spelling of pgroll's `pk`.
        let keys = ["name", "type", "pk", "primary_key", "nullable", "default", "unique", "check", "references", "generated", "comment"]
        guard let m = y.mapping(node, w, allowed: keys, required: ["name", "type"]) else { return nil }
        let r = Reader(y: y, w: w)
        let before = y.sink.items.count
        let name = r.ident(m, "name")
        let type = r.text(m, "type")
        if let type, let typeNode = m["type"], !isPlausibleType(type) {
            y.error(typeNode, "\(w).type '\(type)' is not a column type (letters, digits, spaces, parentheses and commas)")
        }
        let nullable = r.flag(m, "nullable") ?? false
        let def = r.optionalText(m, "default") ?? nil
        let unique = r.flag(m, "unique") ?? false
        let pk = r.flag(m, "pk") ?? r.flag(m, "primary_key") ?? false
        let check = m["check"].flatMap { checkConstraint($0, "\(w).check", y: y) }
        let refs = m["references"].flatMap { reference($0, "\(w).references", y: y) }
        var generated: GeneratedColumn?
        if let g = m["generated"], let gm = y.mapping(g, "\(w).generated", allowed: ["expression", "identity"]) {
            if let e = gm["expression"] {
                generated = GeneratedColumn(expression: y.string(e, "\(w).generated.expression"))
            } else if let i = gm["identity"] {
                let im = StrictYAML.isNull(i) ? [:] : (y.mapping(i, "\(w).generated.identity", allowed: ["user_specified_values", "sequence_options"]) ?? [:])
                let ir = Reader(y: y, w: "\(w).generated.identity")
                let values = ir.choice(im, "user_specified_values", ["ALWAYS", "BY DEFAULT"], prefix: "\(w).generated.identity") ?? "ALWAYS"
                generated = GeneratedColumn(identity: values, sequenceOptions: ir.text(im, "sequence_options"))
            } else {
                y.error(g, "\(w).generated needs `expression` or `identity`")
            }
            if gm["expression"] != nil && gm["identity"] != nil { y.error(g, "\(w).generated has both expression and identity") }
        }
        let comment = r.optionalText(m, "comment") ?? nil
        guard y.sink.items.count == before, let name, let type else { return nil }
        return ColumnDefinition(name: name, type: type, nullable: nullable, default: def, unique: unique, primaryKey: pk,
                                check: check, references: refs, generated: generated, comment: comment)
    }

    /// `{name, constraint, no_inherit}`, or teal's earlier bare expression.
    private static func checkConstraint(_ node: Node, _ w: String, y: StrictYAML) -> CheckConstraint? {
        if node.scalar != nil { return y.string(node, w).map { CheckConstraint(constraint: $0) } }
        guard let m = y.mapping(node, w, allowed: ["name", "constraint", "no_inherit"], required: ["name", "constraint"]) else { return nil }
        let r = Reader(y: y, w: w)
        guard let name = r.ident(m, "name"), let constraint = r.text(m, "constraint") else { return nil }
        return CheckConstraint(name: name, constraint: constraint, noInherit: r.flag(m, "no_inherit") ?? false)
    }

    /// `{name, table, column, on_delete, on_update, match_type, deferrable, initially_deferred}`, or teal's earlier `table(column)`.
    private static func reference(_ node: Node, _ w: String, y: StrictYAML) -> ForeignKeyReference? {
        if node.scalar != nil {
            guard let text = y.string(node, w) else { return nil }
            guard isReference(text) else { y.error(node, "\(w) must be TABLE or TABLE(COLUMN), got '\(text)'"); return nil }
            if let open = text.firstIndex(of: "(") {
                return ForeignKeyReference(table: String(text[..<open]), column: String(text[text.index(after: open)..<text.index(before: text.endIndex)]))
            }
            return ForeignKeyReference(table: text)
        }
        let keys = ["name", "table", "column", "on_delete", "on_update", "match_type", "deferrable", "initially_deferred"]
        guard let m = y.mapping(node, w, allowed: keys, required: ["table"]) else { return nil }
        let r = Reader(y: y, w: w)
        let before = y.sink.items.count
        let ref = ForeignKeyReference(name: r.ident(m, "name"), table: r.ident(m, "table") ?? "", column: r.ident(m, "column"),
                                      onDelete: r.choice(m, "on_delete", foreignKeyActions, prefix: w),
                                      onUpdate: r.choice(m, "on_update", foreignKeyActions, prefix: w),
                                      matchType: r.choice(m, "match_type", matchTypes, prefix: w),
                                      deferrable: r.flag(m, "deferrable") ?? false, initiallyDeferred: r.flag(m, "initially_deferred") ?? false)
        return y.sink.items.count == before ? ref : nil
    }

    private static func tableReference(_ node: Node, _ w: String, y: StrictYAML) -> TableForeignKeyReference? {
        let keys = ["table", "columns", "on_delete", "on_update", "match_type", "on_delete_set_columns"]
        guard let m = y.mapping(node, w, allowed: keys, required: ["table", "columns"]) else { return nil }
        let r = Reader(y: y, w: w)
        let before = y.sink.items.count
        let ref = TableForeignKeyReference(table: r.ident(m, "table") ?? "", columns: r.identList(m, "columns") ?? [],
                                           onDelete: r.choice(m, "on_delete", foreignKeyActions, prefix: w),
                                           onUpdate: r.choice(m, "on_update", foreignKeyActions, prefix: w),
                                           matchType: r.choice(m, "match_type", matchTypes, prefix: w),
                                           onDeleteSetColumns: r.identList(m, "on_delete_set_columns") ?? [])
        return y.sink.items.count == before ? ref : nil
    }

    private static func indexParameters(_ node: Node, _ w: String, y: StrictYAML) -> (include: [String], storage: String?, tablespace: String?)? {
        guard let m = y.mapping(node, w, allowed: ["include_columns", "storage_parameters", "tablespace"]) else { return nil }
        let r = Reader(y: y, w: w)
        return (r.identList(m, "include_columns") ?? [], r.text(m, "storage_parameters"), r.text(m, "tablespace"))
    }

    private static func tableConstraint(_ node: Node, _ w: String, y: StrictYAML) -> TableConstraint? {
        let keys = ["name", "type", "columns", "check", "references", "deferrable", "initially_deferred", "nulls_not_distinct",
                    "no_inherit", "index_parameters", "exclude"]
        guard let m = y.mapping(node, w, allowed: keys, required: ["name", "type"]) else { return nil }
        let r = Reader(y: y, w: w)
        let before = y.sink.items.count
        let name = r.ident(m, "name")
        let type = r.choice(m, "type", ConstraintType.allCases.map(\.rawValue), prefix: w, lowercase: true).flatMap(ConstraintType.init(rawValue:))
        let columns = r.identList(m, "columns") ?? []
        let check = r.text(m, "check")
        let refs = m["references"].flatMap { tableReference($0, "\(w).references", y: y) }
        let params = m["index_parameters"].flatMap { indexParameters($0, "\(w).index_parameters", y: y) }
        var exclude: String?
        if let e = m["exclude"], let em = y.mapping(e, "\(w).exclude", allowed: ["index_method", "elements", "predicate"]) {
            // Kept as the clause that follows EXCLUDE: USING method (elements) [WHERE (predicate)].
            let elements = em["elements"].flatMap { y.string($0, "\(w).exclude.elements") } ?? ""
            let method = em["index_method"].flatMap { y.string($0, "\(w).exclude.index_method") } ?? "gist"
            if !method.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                y.error(e, "\(w).exclude.index_method must be an index method's name, got '\(method)'")
            }
            exclude = "USING \(method) (\(elements))" + (em["predicate"].flatMap { y.string($0, "\(w).exclude.predicate") }.map { " WHERE (\($0))" } ?? "")
        }
        guard y.sink.items.count == before, let name, let type else { return nil }
        switch type {
        case .primaryKey, .unique:
            if columns.isEmpty { y.error(node, "\(w): a \(type.rawValue) constraint needs `columns`"); return nil }
        case .check:
            if check == nil { y.error(node, "\(w): a check constraint needs `check`"); return nil }
        case .foreignKey:
            if columns.isEmpty || refs == nil { y.error(node, "\(w): a foreign_key constraint needs `columns` and `references`"); return nil }
        case .exclude:
            if exclude == nil { y.error(node, "\(w): an exclude constraint needs `exclude`"); return nil }
        }
        return TableConstraint(name: name, type: type, columns: columns, check: check, references: refs,
                               deferrable: r.flag(m, "deferrable") ?? false, initiallyDeferred: r.flag(m, "initially_deferred") ?? false,
                               nullsNotDistinct: r.flag(m, "nulls_not_distinct") ?? false, noInherit: r.flag(m, "no_inherit") ?? false,
                               includeColumns: params?.include ?? [], storageParameters: params?.storage, tablespace: params?.tablespace,
                               exclude: exclude)
    }

    static func isPlausibleType(_ type: String) -> Bool {
        !type.isEmpty && type.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || " (),_[]".unicodeScalars.contains($0)
        }
    }

    static func isReference(_ text: String) -> Bool {
        if Identifiers.isValidSQLIdentifier(text) { return true }
        guard text.hasSuffix(")"), let open = text.firstIndex(of: "(") else { return false }
        let table = String(text[..<open])
        let column = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
        return Identifiers.isValidSQLIdentifier(table) && Identifiers.isValidSQLIdentifier(column)
    }
}
