import Yams

/// Reads schema/NNNN_name.yaml strictly.
public enum MigrationParser {
    /// Parses one migration file. `fileName` is the file's name (`0002_split_name.yaml`), `path` what errors show.
    public static func parse(_ bytes: [UInt8], fileName: String, path: String, checksum: String) -> Result<Migration, ManifestErrors> {
        let sink = DiagnosticSink()
        let migration = parse(bytes, fileName: fileName, path: path, checksum: checksum, sink: sink)
        if let migration, sink.isEmpty { return .success(migration) }
        return .failure(ManifestErrors(sink.items))
    }

    static func parse(_ bytes: [UInt8], fileName: String, path: String, checksum: String, sink: DiagnosticSink) -> Migration? {
        guard fileName.hasSuffix(".yaml"), let (number, _) = Identifiers.parseMigrationStem(String(fileName.dropLast(5))) else {
            sink.add(path: path, "migration files are named NNNN_name.yaml (four digits, then lowercase letters, digits and _)")
            return nil
        }
        let stem = String(fileName.dropLast(5))
        let y = StrictYAML(path: path, sink: sink)
        guard let root = y.compose(bytes) else { return nil }
        guard let top = y.mapping(root, "migration", allowed: ["operations"], required: ["operations"]),
              let opsNode = top["operations"], let items = y.list(opsNode, "operations") else { return nil }
        if items.isEmpty { y.error(opsNode, "operations must not be empty") }
        let before = sink.items.count
        var operations: [Operation] = []
        for (index, item) in items.enumerated() {
            if let op = operation(item, index: index, y: y) { operations.append(op) }
        }
        guard sink.items.count == before else { return nil }
        return Migration(name: stem, number: number, checksum: checksum, operations: operations)
    }

    private static func operation(_ node: Node, index: Int, y: StrictYAML) -> Operation? {
        guard let map = node.mapping, map.count == 1, let (keyNode, body) = map.first.map({ ($0.key, $0.value) }),
              let kind = keyNode.scalar?.string else {
            y.error(node, "operations[\(index)] must be a mapping with exactly one operation key (\(Operation.kinds.joined(separator: ", ")))")
            return nil
        }
        let w = "operations[\(index)].\(kind)"
        func fields(_ allowed: [String], _ required: [String]) -> [String: Node]? {
            y.mapping(body, w, allowed: allowed, required: required)
        }
        func ident(_ m: [String: Node], _ key: String) -> String? { m[key].flatMap { y.identifier($0, "\(w).\(key)") } }
        func text(_ m: [String: Node], _ key: String) -> String? { m[key].flatMap { y.string($0, "\(w).\(key)") } }
        func flag(_ m: [String: Node], _ key: String) -> Bool? { m[key].flatMap { y.bool($0, "\(w).\(key)") } }

        switch kind {
        case "create_table":
            guard let m = fields(["table", "columns"], ["table", "columns"]), let table = ident(m, "table"),
                  let colsNode = m["columns"], let cols = y.list(colsNode, "\(w).columns") else { return nil }
            if cols.isEmpty { y.error(colsNode, "\(w).columns must not be empty"); return nil }
            let columns = cols.enumerated().compactMap { column($1, "\(w).columns[\($0)]", y: y) }
            guard columns.count == cols.count else { return nil }
            if Set(columns.map { $0.name.lowercased() }).count != columns.count {
                y.error(colsNode, "\(w).columns has duplicate column names"); return nil
            }
            return .createTable(CreateTable(table: table, columns: columns))
        case "drop_table":
            guard let m = fields(["table"], ["table"]), let table = ident(m, "table") else { return nil }
            return .dropTable(DropTable(table: table))
        case "rename_table":
            guard let m = fields(["from", "to"], ["from", "to"]), let from = ident(m, "from"), let to = ident(m, "to") else { return nil }
            return .renameTable(RenameTable(from: from, to: to))
        case "add_column":
            guard let m = fields(["table", "column", "up"], ["table", "column"]), let table = ident(m, "table"),
                  let colNode = m["column"], let col = column(colNode, "\(w).column", y: y) else { return nil }
            if m["up"] != nil && text(m, "up") == nil { return nil }
            return .addColumn(AddColumn(table: table, column: col, up: text(m, "up")))
        case "drop_column":
            guard let m = fields(["table", "column", "down"], ["table", "column"]), let table = ident(m, "table"),
                  let col = ident(m, "column") else { return nil }
            if m["down"] != nil && text(m, "down") == nil { return nil }
            return .dropColumn(DropColumn(table: table, column: col, down: text(m, "down")))
        case "rename_column":
            guard let m = fields(["table", "from", "to"], ["table", "from", "to"]), let table = ident(m, "table"),
                  let from = ident(m, "from"), let to = ident(m, "to") else { return nil }
            return .renameColumn(RenameColumn(table: table, from: from, to: to))
        case "alter_column":
            let keys = ["table", "column", "name", "type", "nullable", "default", "unique", "check", "up", "down"]
            guard let m = fields(keys, ["table", "column"]), let table = ident(m, "table"), let col = ident(m, "column") else { return nil }
            let before = y.sink.items.count
            if let type = text(m, "type"), let typeNode = m["type"], !isPlausibleType(type) {
                y.error(typeNode, "\(w).type '\(type)' is not a column type (letters, digits, spaces, parentheses and commas)")
            }
            let op = AlterColumn(table: table, column: col, name: ident(m, "name"), type: text(m, "type"),
                                 nullable: flag(m, "nullable"), default: text(m, "default"), unique: flag(m, "unique"),
                                 check: text(m, "check"), up: text(m, "up"), down: text(m, "down"))
            guard y.sink.items.count == before else { return nil }
            if op.name == nil && op.type == nil && op.nullable == nil && op.default == nil && op.unique == nil && op.check == nil {
                y.error(body, "\(w) changes nothing: give at least one of name, type, nullable, default, unique, check")
                return nil
            }
            return .alterColumn(op)
        case "create_index":
            guard let m = fields(["name", "table", "columns", "unique"], ["name", "table", "columns"]), let name = ident(m, "name"),
                  let table = ident(m, "table"), let colsNode = m["columns"], let cols = y.list(colsNode, "\(w).columns") else { return nil }
            let names = cols.enumerated().compactMap { y.identifier($1, "\(w).columns[\($0)]") }
            guard names.count == cols.count else { return nil }
            if names.isEmpty { y.error(colsNode, "\(w).columns must not be empty"); return nil }
            let unique = m["unique"].map { y.bool($0, "\(w).unique") }
            if unique == .some(nil) { return nil }
            return .createIndex(CreateIndex(name: name, table: table, columns: names, unique: (unique ?? false) ?? false))
        case "drop_index":
            guard let m = fields(["name"], ["name"]), let name = ident(m, "name") else { return nil }
            return .dropIndex(DropIndex(name: name))
        case "sql":
            guard let m = fields(["up", "down"], ["up"]), let up = text(m, "up") else { return nil }
            if m["down"] != nil && text(m, "down") == nil { return nil }
            return .sql(RawSQL(up: up, down: text(m, "down")))
        default:
            y.error(keyNode, "unknown operation '\(kind)' (expected one of: \(Operation.kinds.joined(separator: ", ")))")
            return nil
        }
    }

    private static func column(_ node: Node, _ w: String, y: StrictYAML) -> ColumnDefinition? {
        let keys = ["name", "type", "nullable", "default", "unique", "primary_key", "check", "references"]
        guard let m = y.mapping(node, w, allowed: keys, required: ["name", "type"]) else { return nil }
        let before = y.sink.items.count
        let name = m["name"].flatMap { y.identifier($0, "\(w).name") }
        let type = m["type"].flatMap { y.string($0, "\(w).type") }
        if let type, let typeNode = m["type"], !isPlausibleType(type) {
            y.error(typeNode, "\(w).type '\(type)' is not a column type (letters, digits, spaces, parentheses and commas)")
        }
        let nullable = m["nullable"].flatMap { y.bool($0, "\(w).nullable") } ?? true
        let def = m["default"].flatMap { y.string($0, "\(w).default") }
        let unique = m["unique"].flatMap { y.bool($0, "\(w).unique") } ?? false
        let pk = m["primary_key"].flatMap { y.bool($0, "\(w).primary_key") } ?? false
        let check = m["check"].flatMap { y.string($0, "\(w).check") }
        let refs = m["references"].flatMap { y.string($0, "\(w).references") }
        if let refs, let n = m["references"], !isReference(refs) {
            y.error(n, "\(w).references must be TABLE or TABLE(COLUMN), got '\(refs)'")
        }
        guard y.sink.items.count == before, let name, let type else { return nil }
        return ColumnDefinition(name: name, type: type, nullable: nullable, default: def, unique: unique, primaryKey: pk,
                                check: check, references: refs)
    }

    static func isPlausibleType(_ type: String) -> Bool {
        !type.isEmpty && type.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || " (),_".unicodeScalars.contains($0)
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
