/// One file under apps/<app>/schema/: `NNNN_name.yaml`.
public struct Migration: Codable, Hashable, Sendable {
    /// The file stem, `NNNN_name`: the migration's identity.
    public var name: String
    public var number: Int
    /// Git blob id of the file's bytes: a file changed after it was applied is caught by this.
    public var checksum: String
    public var operations: [Operation]

    public init(name: String, number: Int, checksum: String, operations: [Operation]) {
        self.name = name
        self.number = number
        self.checksum = checksum
        self.operations = operations
    }
}

/// A column as create_table and add_column declare it.
public struct ColumnDefinition: Codable, Hashable, Sendable {
    public var name: String
    public var type: String
    /// Defaults to true, as in SQL.
    public var nullable: Bool
    /// An SQL expression.
    public var `default`: String?
    public var unique: Bool
    public var primaryKey: Bool
    /// An SQL boolean expression over the row.
    public var check: String?
    /// `table(column)` or `table`.
    public var references: String?

    public init(name: String, type: String, nullable: Bool = true, default: String? = nil, unique: Bool = false,
                primaryKey: Bool = false, check: String? = nil, references: String? = nil) {
        self.name = name
        self.type = type
        self.nullable = nullable
        self.default = `default`
        self.unique = unique
        self.primaryKey = primaryKey
        self.check = check
        self.references = references
    }

    enum CodingKeys: String, CodingKey {
        case name, type, nullable, `default`, unique, primaryKey = "primary_key", check, references
    }
}

public struct CreateTable: Codable, Hashable, Sendable {
    public var table: String
    public var columns: [ColumnDefinition]
    public init(table: String, columns: [ColumnDefinition]) { self.table = table; self.columns = columns }
}

public struct DropTable: Codable, Hashable, Sendable {
    public var table: String
    public init(table: String) { self.table = table }
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

public struct AlterColumn: Codable, Hashable, Sendable {
    public var table: String
    public var column: String
    /// The new column name; SQLite cannot show one column with two definitions, so a changed
    /// type, nullability, default, uniqueness or check comes with a new name.
    public var name: String?
    public var type: String?
    public var nullable: Bool?
    public var `default`: String?
    public var unique: Bool?
    public var check: String?
    public var up: String?
    public var down: String?

    public init(table: String, column: String, name: String? = nil, type: String? = nil, nullable: Bool? = nil,
                default: String? = nil, unique: Bool? = nil, check: String? = nil, up: String? = nil, down: String? = nil) {
        self.table = table
        self.column = column
        self.name = name
        self.type = type
        self.nullable = nullable
        self.default = `default`
        self.unique = unique
        self.check = check
        self.up = up
        self.down = down
    }
}

public struct CreateIndex: Codable, Hashable, Sendable {
    public var name: String
    public var table: String
    public var columns: [String]
    public var unique: Bool
    public init(name: String, table: String, columns: [String], unique: Bool = false) {
        self.name = name; self.table = table; self.columns = columns; self.unique = unique
    }
}

public struct DropIndex: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

/// Raw SQL: not dual-version safe.
public struct RawSQL: Codable, Hashable, Sendable {
    public var up: String
    public var down: String?
    public init(up: String, down: String? = nil) { self.up = up; self.down = down }
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
        case .sql: "sql"
        }
    }

    public static let kinds = ["create_table", "drop_table", "rename_table", "add_column", "drop_column",
                               "rename_column", "alter_column", "create_index", "drop_index", "sql"]
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
        case "sql": self = .sql(try c.decode(RawSQL.self, forKey: key))
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown operation \(key.stringValue)"))
        }
    }
}
