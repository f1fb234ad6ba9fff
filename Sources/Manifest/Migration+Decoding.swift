/// Decoding of stored definitions (`_teal_migrations.definition`) that is lenient where teal's earlier versions
/// wrote other shapes: `table` for create_table/drop_table's `name`, `primary_key` for `pk`, a bare string for
/// `check` and `references`, plain column names for an index, and fields added since then missing.
extension ColumnDefinition {
    private enum EarlierKeys: String, CodingKey { case primaryKey = "primary_key" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let earlier = try decoder.container(keyedBy: EarlierKeys.self)
        let check: CheckConstraint?
        if let text = try? c.decodeIfPresent(String.self, forKey: .check) { check = CheckConstraint(constraint: text) } else {
            check = try c.decodeIfPresent(CheckConstraint.self, forKey: .check)
        }
        var references: ForeignKeyReference?
        if let text = try? c.decodeIfPresent(String.self, forKey: .references) {
            if let open = text.firstIndex(of: "("), text.hasSuffix(")") {
                references = ForeignKeyReference(table: String(text[..<open]), column: String(text[text.index(after: open)..<text.index(before: text.endIndex)]))
            } else {
                references = ForeignKeyReference(table: text)
            }
        } else {
            references = try c.decodeIfPresent(ForeignKeyReference.self, forKey: .references)
        }
        self.init(name: try c.decode(String.self, forKey: .name), type: try c.decode(String.self, forKey: .type),
                  nullable: try c.decodeIfPresent(Bool.self, forKey: .nullable) ?? false, default: try c.decodeIfPresent(String.self, forKey: .default),
                  unique: try c.decodeIfPresent(Bool.self, forKey: .unique) ?? false,
                  primaryKey: try c.decodeIfPresent(Bool.self, forKey: .primaryKey) ?? earlier.decodeIfPresent(Bool.self, forKey: .primaryKey) ?? false,
                  check: check, references: references, generated: try c.decodeIfPresent(GeneratedColumn.self, forKey: .generated),
                  comment: try c.decodeIfPresent(String.self, forKey: .comment))
    }
}

extension CreateTable {
    private enum Keys: String, CodingKey { case name, table, columns, constraints, comment }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        self.init(name: try c.decodeIfPresent(String.self, forKey: .name) ?? c.decode(String.self, forKey: .table),
                  columns: try c.decode([ColumnDefinition].self, forKey: .columns),
                  constraints: try c.decodeIfPresent([TableConstraint].self, forKey: .constraints) ?? [],
                  comment: try c.decodeIfPresent(String.self, forKey: .comment))
    }
}

extension DropTable {
    private enum Keys: String, CodingKey { case name, table }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        self.init(name: try c.decodeIfPresent(String.self, forKey: .name) ?? c.decode(String.self, forKey: .table))
    }
}

extension AlterColumn {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let check: CheckConstraint?
        if let text = try? c.decodeIfPresent(String.self, forKey: .check) { check = CheckConstraint(constraint: text) } else {
            check = try c.decodeIfPresent(CheckConstraint.self, forKey: .check)
        }
        let unique: UniqueConstraint?
        if let flag = try? c.decodeIfPresent(Bool.self, forKey: .unique) { unique = flag ? UniqueConstraint() : nil } else {
            unique = try c.decodeIfPresent(UniqueConstraint.self, forKey: .unique)
        }
        self.init(table: try c.decode(String.self, forKey: .table), column: try c.decode(String.self, forKey: .column),
                  name: try c.decodeIfPresent(String.self, forKey: .name), type: try c.decodeIfPresent(String.self, forKey: .type),
                  nullable: try c.decodeIfPresent(Bool.self, forKey: .nullable), default: try c.decodeIfPresent(String.self, forKey: .default),
                  dropDefault: try c.decodeIfPresent(Bool.self, forKey: .dropDefault) ?? false, unique: unique, check: check,
                  references: try c.decodeIfPresent(ForeignKeyReference.self, forKey: .references),
                  comment: try c.decodeIfPresent(String.self, forKey: .comment),
                  dropComment: try c.decodeIfPresent(Bool.self, forKey: .dropComment) ?? false,
                  up: try c.decodeIfPresent(String.self, forKey: .up), down: try c.decodeIfPresent(String.self, forKey: .down))
    }
}

extension CreateIndex {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let columns: [IndexField]
        if let names = try? c.decode([String].self, forKey: .columns) { columns = names.map { IndexField(column: $0) } } else {
            columns = try c.decode([IndexField].self, forKey: .columns)
        }
        self.init(name: try c.decode(String.self, forKey: .name), table: try c.decode(String.self, forKey: .table), columns: columns,
                  unique: try c.decodeIfPresent(Bool.self, forKey: .unique) ?? false, method: try c.decodeIfPresent(String.self, forKey: .method),
                  predicate: try c.decodeIfPresent(String.self, forKey: .predicate),
                  storageParameters: try c.decodeIfPresent(String.self, forKey: .storageParameters))
    }
}

extension RawSQL {
    private enum Keys: String, CodingKey { case up, down, onComplete }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        self.init(up: try c.decode(String.self, forKey: .up), down: try c.decodeIfPresent(String.self, forKey: .down),
                  onComplete: try c.decodeIfPresent(Bool.self, forKey: .onComplete) ?? false)
    }
}
