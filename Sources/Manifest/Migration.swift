/// One file under apps/<app>/schema/: `NNNN_name.yaml` (or pgroll's `NNNN_name.json`).
public struct Migration: Codable, Hashable, Sendable {
    /// The file stem, `NNNN_name`: the migration's identity.
    public var name: String
    public var number: Int
    /// Git blob id of the file's bytes: a file changed after it was applied is caught by this.
    public var checksum: String
    public var operations: [Operation]
    /// pgroll's `version_schema`: accepted and recorded; on SQLite both shapes share one namespace, so it names nothing.
    public var versionSchema: String?
    /// pgroll's optional `name` key, when the file has one; the file stem stays the identity.
    public var declaredName: String?
    /// Where the file and each operation's fields are, for `path:line` messages; not part of the stored definition.
    public var source: MigrationSource?

    public init(name: String, number: Int, checksum: String, operations: [Operation], versionSchema: String? = nil,
                declaredName: String? = nil, source: MigrationSource? = nil) {
        self.name = name
        self.number = number
        self.checksum = checksum
        self.operations = operations
        self.versionSchema = versionSchema
        self.declaredName = declaredName
        self.source = source
    }

    enum CodingKeys: String, CodingKey { case name, number, checksum, operations, versionSchema = "version_schema", declaredName = "declared_name" }

    public static func == (a: Migration, b: Migration) -> Bool {
        a.name == b.name && a.number == b.number && a.checksum == b.checksum && a.operations == b.operations
            && a.versionSchema == b.versionSchema && a.declaredName == b.declaredName
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name); hasher.combine(number); hasher.combine(checksum); hasher.combine(operations)
    }
}

/// Source positions of one migration file: the file's path and, per operation, the line of each field.
public struct MigrationSource: Sendable, Hashable {
    public var path: String
    /// Line of the operation's key, per operation.
    public var operationLines: [Int]
    /// Per operation, the line of each field by its dotted path inside the operation (`up`, `column.default`, `columns[1].check.constraint`).
    public var fieldLines: [[String: Int]]

    public init(path: String, operationLines: [Int] = [], fieldLines: [[String: Int]] = []) {
        self.path = path
        self.operationLines = operationLines
        self.fieldLines = fieldLines
    }

    /// The line of `field` in operation `index`, else the operation's line, else 1.
    public func line(operation index: Int?, field: String? = nil) -> Int {
        guard let index, index >= 0, index < operationLines.count else { return 1 }
        if let field, index < fieldLines.count, let line = fieldLines[index][field] { return line }
        return operationLines[index]
    }
}

/// pgroll's `check: {name, constraint}`.
public struct CheckConstraint: Codable, Hashable, Sendable {
    public var name: String?
    /// An SQL boolean expression over the row.
    public var constraint: String
    /// PostgreSQL table inheritance; refused on SQLite.
    public var noInherit: Bool

    public init(name: String? = nil, constraint: String, noInherit: Bool = false) {
        self.name = name
        self.constraint = constraint
        self.noInherit = noInherit
    }

    enum CodingKeys: String, CodingKey { case name, constraint, noInherit = "no_inherit" }
}

/// pgroll's column `references: {name, table, column, on_delete, on_update, match_type, deferrable, initially_deferred}`.
public struct ForeignKeyReference: Codable, Hashable, Sendable {
    public var name: String?
    public var table: String
    /// nil: the referenced table's primary key.
    public var column: String?
    public var onDelete: String?
    public var onUpdate: String?
    public var matchType: String?
    public var deferrable: Bool
    public var initiallyDeferred: Bool

    public init(name: String? = nil, table: String, column: String? = nil, onDelete: String? = nil, onUpdate: String? = nil,
                matchType: String? = nil, deferrable: Bool = false, initiallyDeferred: Bool = false) {
        self.name = name
        self.table = table
        self.column = column
        self.onDelete = onDelete
        self.onUpdate = onUpdate
        self.matchType = matchType
        self.deferrable = deferrable
        self.initiallyDeferred = initiallyDeferred
    }

    enum CodingKeys: String, CodingKey {
        case name, table, column, onDelete = "on_delete", onUpdate = "on_update", matchType = "match_type", deferrable
        case initiallyDeferred = "initially_deferred"
    }
}

/// pgroll's table-level `references: {table, columns, on_delete, on_update, match_type, on_delete_set_columns}`.
public struct TableForeignKeyReference: Codable, Hashable, Sendable {
    public var table: String
    public var columns: [String]
    public var onDelete: String?
    public var onUpdate: String?
    public var matchType: String?
    /// PostgreSQL 15's `ON DELETE SET NULL (columns)`; refused on SQLite.
    public var onDeleteSetColumns: [String]

    public init(table: String, columns: [String], onDelete: String? = nil, onUpdate: String? = nil, matchType: String? = nil,
                onDeleteSetColumns: [String] = []) {
        self.table = table
        self.columns = columns
        self.onDelete = onDelete
        self.onUpdate = onUpdate
        self.matchType = matchType
        self.onDeleteSetColumns = onDeleteSetColumns
    }

    enum CodingKeys: String, CodingKey {
        case table, columns, onDelete = "on_delete", onUpdate = "on_update", matchType = "match_type"
        case onDeleteSetColumns = "on_delete_set_columns"
    }
}

/// pgroll's `generated: {expression}` or `generated: {identity: {user_specified_values, sequence_options}}`.
public struct GeneratedColumn: Codable, Hashable, Sendable {
    public var expression: String?
    /// Set for an identity column: `ALWAYS` or `BY DEFAULT`.
    public var identity: String?
    public var sequenceOptions: String?

    public init(expression: String? = nil, identity: String? = nil, sequenceOptions: String? = nil) {
        self.expression = expression
        self.identity = identity
        self.sequenceOptions = sequenceOptions
    }

    enum CodingKeys: String, CodingKey { case expression, identity, sequenceOptions = "sequence_options" }
}

/// A column as create_table and add_column declare it.
public struct ColumnDefinition: Codable, Hashable, Sendable {
    public var name: String
    public var type: String
    /// Defaults to false, as in pgroll.
    public var nullable: Bool
    /// An SQL expression.
    public var `default`: String?
    public var unique: Bool
    /// pgroll's `pk`; several columns with it form a composite primary key.
    public var primaryKey: Bool
    public var check: CheckConstraint?
    public var references: ForeignKeyReference?
    public var generated: GeneratedColumn?
    public var comment: String?

    public init(name: String, type: String, nullable: Bool = false, default: String? = nil, unique: Bool = false,
                primaryKey: Bool = false, check: CheckConstraint? = nil, references: ForeignKeyReference? = nil,
                generated: GeneratedColumn? = nil, comment: String? = nil) {
        self.name = name
        self.type = type
        self.nullable = nullable
        self.default = `default`
        self.unique = unique
        self.primaryKey = primaryKey
        self.check = check
        self.references = references
        self.generated = generated
        self.comment = comment
    }

    enum CodingKeys: String, CodingKey {
        case name, type, nullable, `default`, unique, primaryKey = "pk", check, references, generated, comment
    }
}

/// pgroll's constraint types (table constraints and create_constraint).
public enum ConstraintType: String, Codable, Hashable, Sendable, CaseIterable {
    case primaryKey = "primary_key"
    case unique
    case check
    case foreignKey = "foreign_key"
    case exclude
}

/// One entry of `create_table.constraints`.
public struct TableConstraint: Codable, Hashable, Sendable {
    public var name: String
    public var type: ConstraintType
    public var columns: [String]
    /// For `check`.
    public var check: String?
    /// For `foreign_key`.
    public var references: TableForeignKeyReference?
    public var deferrable: Bool
    public var initiallyDeferred: Bool
    public var nullsNotDistinct: Bool
    public var noInherit: Bool
    /// `index_parameters.include_columns`, `.storage_parameters`, `.tablespace`: PostgreSQL only.
    public var includeColumns: [String]
    public var storageParameters: String?
    public var tablespace: String?
    /// `exclude`: PostgreSQL only; the clause after EXCLUDE, `USING method (elements) [WHERE (predicate)]`.
    public var exclude: String?

    public init(name: String, type: ConstraintType, columns: [String] = [], check: String? = nil, references: TableForeignKeyReference? = nil,
                deferrable: Bool = false, initiallyDeferred: Bool = false, nullsNotDistinct: Bool = false, noInherit: Bool = false,
                includeColumns: [String] = [], storageParameters: String? = nil, tablespace: String? = nil, exclude: String? = nil) {
        self.name = name
        self.type = type
        self.columns = columns
        self.check = check
        self.references = references
        self.deferrable = deferrable
        self.initiallyDeferred = initiallyDeferred
        self.nullsNotDistinct = nullsNotDistinct
        self.noInherit = noInherit
        self.includeColumns = includeColumns
        self.storageParameters = storageParameters
        self.tablespace = tablespace
        self.exclude = exclude
    }

    enum CodingKeys: String, CodingKey {
        case name, type, columns, check, references, deferrable, initiallyDeferred = "initially_deferred"
        case nullsNotDistinct = "nulls_not_distinct", noInherit = "no_inherit", includeColumns = "include_columns"
        case storageParameters = "storage_parameters", tablespace, exclude
    }
}

public struct CreateTable: Codable, Hashable, Sendable {
    public var name: String
    public var columns: [ColumnDefinition]
    public var constraints: [TableConstraint]
    public var comment: String?

    public init(name: String, columns: [ColumnDefinition], constraints: [TableConstraint] = [], comment: String? = nil) {
        self.name = name
        self.columns = columns
        self.constraints = constraints
        self.comment = comment
    }
}

public struct DropTable: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct RenameTable: Codable, Hashable, Sendable {
    public var from: String
    public var to: String
    public init(from: String, to: String) { self.from = from; self.to = to }
}

public struct AddColumn: Codable, Hashable, Sendable {
    public var table: String
    public var column: ColumnDefinition
    /// Value for rows written in the old shape (an SQL expression over the old row).
    public var up: String?
    public init(table: String, column: ColumnDefinition, up: String? = nil) { self.table = table; self.column = column; self.up = up }
}

public struct DropColumn: Codable, Hashable, Sendable {
    public var table: String
    public var column: String
    /// Value for rows written in the new shape (an SQL expression over the new row).
    public var down: String?
    public init(table: String, column: String, down: String? = nil) { self.table = table; self.column = column; self.down = down }
}

public struct RenameColumn: Codable, Hashable, Sendable {
    public var table: String
    public var from: String
    public var to: String
    public init(table: String, from: String, to: String) { self.table = table; self.from = from; self.to = to }
}

/// pgroll's `unique: {name}` on alter_column.
public struct UniqueConstraint: Codable, Hashable, Sendable {
    public var name: String?
    public init(name: String? = nil) { self.name = name }
}

/// Changes one column. Without `name` (pgroll's form) the column keeps its name; with it (teal's form) the
/// column is renamed as well.
public struct AlterColumn: Codable, Hashable, Sendable {
    public var table: String
    public var column: String
    /// The new column name, if the column is renamed too.
    public var name: String?
    public var type: String?
    public var nullable: Bool?
    /// A new default; see `dropDefault` for `default: null`.
    public var `default`: String?
    /// `default: null`: the default goes.
    public var dropDefault: Bool
    public var unique: UniqueConstraint?
    public var check: CheckConstraint?
    public var references: ForeignKeyReference?
    public var comment: String?
    /// `comment: null`.
    public var dropComment: Bool
    public var up: String?
    public var down: String?

    public init(table: String, column: String, name: String? = nil, type: String? = nil, nullable: Bool? = nil,
                default: String? = nil, dropDefault: Bool = false, unique: UniqueConstraint? = nil, check: CheckConstraint? = nil,
                references: ForeignKeyReference? = nil, comment: String? = nil, dropComment: Bool = false,
                up: String? = nil, down: String? = nil) {
        self.table = table
        self.column = column
        self.name = name
        self.type = type
        self.nullable = nullable
        self.default = `default`
        self.dropDefault = dropDefault
        self.unique = unique
        self.check = check
        self.references = references
        self.comment = comment
        self.dropComment = dropComment
        self.up = up
        self.down = down
    }

    /// True when the column's shape changes (not only its name or comment).
    public var changesShape: Bool {
        type != nil || nullable != nil || `default` != nil || dropDefault || unique != nil || check != nil || references != nil
    }

    enum CodingKeys: String, CodingKey {
        case table, column, name, type, nullable, `default`, dropDefault = "drop_default", unique, check, references, comment
        case dropComment = "drop_comment", up, down
    }
}

/// One column of an index: pgroll's `{column, opclass, sort, nulls, collate}`.
public struct IndexField: Codable, Hashable, Sendable {
    public var column: String
    /// PostgreSQL operator class; refused on SQLite.
    public var opclass: String?
    /// `ASC` or `DESC`.
    public var sort: String?
    /// `FIRST` or `LAST`.
    public var nulls: String?
    public var collate: String?

    public init(column: String, opclass: String? = nil, sort: String? = nil, nulls: String? = nil, collate: String? = nil) {
        self.column = column
        self.opclass = opclass
        self.sort = sort
        self.nulls = nulls
        self.collate = collate
    }
}

public struct CreateIndex: Codable, Hashable, Sendable {
    public var name: String
    public var table: String
    public var columns: [IndexField]
    public var unique: Bool
    /// `btree` (the only one SQLite has), `hash`, `gin`, `gist`, `brin`, `spgist`.
    public var method: String?
    /// A partial index's WHERE condition.
    public var predicate: String?
    public var storageParameters: String?

    public init(name: String, table: String, columns: [IndexField], unique: Bool = false, method: String? = nil,
                predicate: String? = nil, storageParameters: String? = nil) {
        self.name = name
        self.table = table
        self.columns = columns
        self.unique = unique
        self.method = method
        self.predicate = predicate
        self.storageParameters = storageParameters
    }

    public init(name: String, table: String, columns: [String], unique: Bool = false) {
        self.init(name: name, table: table, columns: columns.map { IndexField(column: $0) }, unique: unique)
    }

    enum CodingKeys: String, CodingKey { case name, table, columns, unique, method, predicate, storageParameters = "storage_parameters" }
}

public struct DropIndex: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

/// Raw SQL: not dual-version safe.
public struct RawSQL: Codable, Hashable, Sendable {
    public var up: String
    public var down: String?
    /// pgroll's `onComplete`: run `up` at complete instead of start.
    public var onComplete: Bool
    public init(up: String, down: String? = nil, onComplete: Bool = false) { self.up = up; self.down = down; self.onComplete = onComplete }
}

/// `create_constraint`: a constraint over existing columns; `up`/`down` map each column to its value in the other shape.
public struct CreateConstraint: Codable, Hashable, Sendable {
    public var table: String
    public var name: String
    public var type: ConstraintType
    public var columns: [String]
    public var check: String?
    public var references: TableForeignKeyReference?
    public var up: [String: String]
    public var down: [String: String]
    public var noInherit: Bool
    public var includeColumns: [String]
    public var storageParameters: String?
    public var tablespace: String?

    public init(table: String, name: String, type: ConstraintType, columns: [String], check: String? = nil,
                references: TableForeignKeyReference? = nil, up: [String: String] = [:], down: [String: String] = [:],
                noInherit: Bool = false, includeColumns: [String] = [], storageParameters: String? = nil, tablespace: String? = nil) {
        self.table = table
        self.name = name
        self.type = type
        self.columns = columns
        self.check = check
        self.references = references
        self.up = up
        self.down = down
        self.noInherit = noInherit
        self.includeColumns = includeColumns
        self.storageParameters = storageParameters
        self.tablespace = tablespace
    }

    enum CodingKeys: String, CodingKey {
        case table, name, type, columns, check, references, up, down, noInherit = "no_inherit", includeColumns = "include_columns"
        case storageParameters = "storage_parameters", tablespace
    }
}

/// `drop_constraint`: a constraint on one column goes.
public struct DropConstraint: Codable, Hashable, Sendable {
    public var table: String
    public var name: String
    public var up: String?
    public var down: String?
    public init(table: String, name: String, up: String? = nil, down: String? = nil) {
        self.table = table; self.name = name; self.up = up; self.down = down
    }
}

/// `drop_multicolumn_constraint`: a constraint over several columns goes.
public struct DropMultiColumnConstraint: Codable, Hashable, Sendable {
    public var table: String
    public var name: String
    public var up: [String: String]
    public var down: [String: String]
    public init(table: String, name: String, up: [String: String] = [:], down: [String: String] = [:]) {
        self.table = table; self.name = name; self.up = up; self.down = down
    }
}

public struct RenameConstraint: Codable, Hashable, Sendable {
    public var table: String
    public var from: String
    public var to: String
    public init(table: String, from: String, to: String) { self.table = table; self.from = from; self.to = to }
}

/// `set_replica_identity: {table, identity: {type, index}}`: logical replication, PostgreSQL's concern.
public struct SetReplicaIdentity: Codable, Hashable, Sendable {
    public var table: String
    /// `default`, `full`, `nothing` or `index`.
    public var type: String
    public var index: String?
    public init(table: String, type: String, index: String? = nil) { self.table = table; self.type = type; self.index = index }
}

/// One operation of a migration, in pgroll's vocabulary.
public enum Operation: Hashable, Sendable {
    case createTable(CreateTable)
    case dropTable(DropTable)
    case renameTable(RenameTable)
    case addColumn(AddColumn)
    case dropColumn(DropColumn)
    case renameColumn(RenameColumn)
    case alterColumn(AlterColumn)
    case createIndex(CreateIndex)
    case dropIndex(DropIndex)
    case createConstraint(CreateConstraint)
    case dropConstraint(DropConstraint)
    case dropMultiColumnConstraint(DropMultiColumnConstraint)
    case renameConstraint(RenameConstraint)
    case setReplicaIdentity(SetReplicaIdentity)
    case sql(RawSQL)

    /// The YAML key of this operation.
    public var kind: String {
        switch self {
        case .createTable: "create_table"
        case .dropTable: "drop_table"
        case .renameTable: "rename_table"
        case .addColumn: "add_column"
        case .dropColumn: "drop_column"
        case .renameColumn: "rename_column"
        case .alterColumn: "alter_column"
        case .createIndex: "create_index"
        case .dropIndex: "drop_index"
        case .createConstraint: "create_constraint"
        case .dropConstraint: "drop_constraint"
        case .dropMultiColumnConstraint: "drop_multicolumn_constraint"
        case .renameConstraint: "rename_constraint"
        case .setReplicaIdentity: "set_replica_identity"
        case .sql: "sql"
        }
    }

    public static let kinds = ["create_table", "drop_table", "rename_table", "add_column", "drop_column", "rename_column",
                               "alter_column", "create_index", "drop_index", "create_constraint", "drop_constraint",
                               "drop_multicolumn_constraint", "rename_constraint", "set_replica_identity", "sql"]
}

extension Operation: Codable {
    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Encoded as `{"<kind>": {...}}`, the same shape as the YAML.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        let key = Key(kind)
        switch self {
        case .createTable(let o): try c.encode(o, forKey: key)
        case .dropTable(let o): try c.encode(o, forKey: key)
        case .renameTable(let o): try c.encode(o, forKey: key)
        case .addColumn(let o): try c.encode(o, forKey: key)
        case .dropColumn(let o): try c.encode(o, forKey: key)
        case .renameColumn(let o): try c.encode(o, forKey: key)
        case .alterColumn(let o): try c.encode(o, forKey: key)
        case .createIndex(let o): try c.encode(o, forKey: key)
        case .dropIndex(let o): try c.encode(o, forKey: key)
        case .createConstraint(let o): try c.encode(o, forKey: key)
        case .dropConstraint(let o): try c.encode(o, forKey: key)
        case .dropMultiColumnConstraint(let o): try c.encode(o, forKey: key)
        case .renameConstraint(let o): try c.encode(o, forKey: key)
        case .setReplicaIdentity(let o): try c.encode(o, forKey: key)
        case .sql(let o): try c.encode(o, forKey: key)
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        guard let key = c.allKeys.first, c.allKeys.count == 1 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "an operation has exactly one key"))
        }
        switch key.stringValue {
        case "create_table": self = .createTable(try c.decode(CreateTable.self, forKey: key))
        case "drop_table": self = .dropTable(try c.decode(DropTable.self, forKey: key))
        case "rename_table": self = .renameTable(try c.decode(RenameTable.self, forKey: key))
        case "add_column": self = .addColumn(try c.decode(AddColumn.self, forKey: key))
        case "drop_column": self = .dropColumn(try c.decode(DropColumn.self, forKey: key))
        case "rename_column": self = .renameColumn(try c.decode(RenameColumn.self, forKey: key))
        case "alter_column": self = .alterColumn(try c.decode(AlterColumn.self, forKey: key))
        case "create_index": self = .createIndex(try c.decode(CreateIndex.self, forKey: key))
        case "drop_index": self = .dropIndex(try c.decode(DropIndex.self, forKey: key))
        case "create_constraint": self = .createConstraint(try c.decode(CreateConstraint.self, forKey: key))
        case "drop_constraint": self = .dropConstraint(try c.decode(DropConstraint.self, forKey: key))
        case "drop_multicolumn_constraint": self = .dropMultiColumnConstraint(try c.decode(DropMultiColumnConstraint.self, forKey: key))
        case "rename_constraint": self = .renameConstraint(try c.decode(RenameConstraint.self, forKey: key))
        case "set_replica_identity": self = .setReplicaIdentity(try c.decode(SetReplicaIdentity.self, forKey: key))
        case "sql": self = .sql(try c.decode(RawSQL.self, forKey: key))
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown operation \(key.stringValue)"))
        }
    }
}
