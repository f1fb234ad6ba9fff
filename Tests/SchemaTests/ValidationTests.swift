import Foundation
import Manifest
import Testing
@testable import Schema

/// `MigrationValidation`: what SQLite cannot express is refused at path:line, and every migration is dry-run on an
/// in-memory database built from the ones before it.
@Suite struct ValidationTests {
    func file(_ name: String, _ text: String) throws -> Migration {
        try MigrationParser.parse(Array(text.utf8), fileName: name, path: "apps/shop/schema/\(name)", checksum: name).get()
    }

    let base = """
        operations:
          - create_table:
              name: fruits
              columns:
                - {name: id, type: serial, pk: true}
                - {name: name, type: varchar(255), unique: true}
                - {name: price, type: "decimal(10,2)", nullable: true}
        """

    struct Refused: Sendable, CustomTestStringConvertible {
        var construct: String
        var yaml: String
        /// `line: fragment` expected in the diagnostic.
        var expected: String
        var testDescription: String { construct }
    }

    static let refused: [Refused] = [
        Refused(construct: ":: cast", yaml: "operations:\n  - add_column:\n      table: fruits\n      up: (price * 100)::integer\n      column: {name: cents, type: int}\n",
                expected: "apps/shop/schema/0002_x.yaml:4:1: operations[0] (add_column).up: the :: cast (SQLite: CAST(x AS type)): this needs PostgreSQL"),
        Refused(construct: "now()", yaml: "operations:\n  - add_column:\n      table: fruits\n      column:\n        name: added\n        type: timestamptz\n        default: now()\n",
                expected: "apps/shop/schema/0002_x.yaml:7:1: operations[0] (add_column).column.default: now() (SQLite: CURRENT_TIMESTAMP or strftime): this needs PostgreSQL"),
        Refused(construct: "enum type", yaml: "operations:\n  - sql:\n      up: CREATE TYPE size AS ENUM ('s', 'm');\n",
                expected: "apps/shop/schema/0002_x.yaml:3:1: operations[0] (sql).up: CREATE TYPE (enums and composite types): this needs PostgreSQL"),
        Refused(construct: "exclusion constraint", yaml: "operations:\n  - create_table:\n      name: rooms\n      columns: [{name: id, type: integer, pk: true}, {name: title, type: text}]\n      constraints:\n        - {name: no_twins, type: exclude, exclude: {index_method: btree, elements: title WITH =}}\n",
                expected: "apps/shop/schema/0002_x.yaml:6:1: operations[0] (create_table).constraints[0]: constraint no_twins is an EXCLUDE constraint: this needs PostgreSQL"),
        Refused(construct: "hash index", yaml: "operations:\n  - create_index: {name: idx, table: fruits, columns: [{column: name}], method: hash}\n",
                expected: "apps/shop/schema/0002_x.yaml:2:1: operations[0] (create_index).method: a hash index: this needs PostgreSQL"),
        Refused(construct: "operator class", yaml: "operations:\n  - create_index:\n      name: idx\n      table: fruits\n      columns:\n        - column: id\n          opclass: {name: int8_ops}\n",
                expected: "apps/shop/schema/0002_x.yaml:7:1: operations[0] (create_index).columns[0].opclass: the operator class int8_ops on id: this needs PostgreSQL"),
        Refused(construct: "PostgreSQL function", yaml: "operations:\n  - alter_column:\n      table: fruits\n      column: name\n      nullable: true\n      up: name\n      down: lpad(name, 4, '-')\n",
                expected: "apps/shop/schema/0002_x.yaml:7:1: operations[0] (alter_column).down: lpad(): this needs PostgreSQL"),
        Refused(construct: "primary key added to an existing table", yaml: "operations:\n  - create_constraint: {table: fruits, name: pk, type: primary_key, columns: [name], up: {name: name}, down: {name: name}}\n",
                expected: "apps/shop/schema/0002_x.yaml:2:1: operations[0] (create_constraint).type: SQLite cannot add a primary key to an existing table in place"),
        Refused(construct: "ATTACH", yaml: "operations:\n  - sql:\n      up: ATTACH DATABASE '/tmp/elsewhere.db' AS other\n",
                expected: "apps/shop/schema/0002_x.yaml:3:1: operations[0] (sql).up: the ATTACH statement (a migration may not reach other database files)"),
    ]

    @Test(arguments: refused)
    func refusesWhatNeedsPostgreSQL(_ r: Refused) throws {
        let found = MigrationValidation.check([try file("0001_fruits.yaml", base), try file("0002_x.yaml", r.yaml)]).map(\.description)
        #expect(found.contains { $0.hasPrefix(r.expected) }, "got: \(found)")
    }

    @Test func dryRunNamesTheBadExpressionsLine() throws {
        let bad = """
            operations:
              - add_column:
                  table: fruits
                  column: {name: label, type: text, nullable: true}
                  up: upper(nmae)
            """
        let found = MigrationValidation.check([try file("0001_fruits.yaml", base), try file("0002_label.yaml", bad)]).map(\.description)
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("apps/shop/schema/0002_label.yaml:5:1: operations[0] (add_column)") == true, "got: \(found)")
        #expect(found.first?.contains("no such column: nmae") == true)
    }

    @Test func dryRunChecksDownOfRawSQLAndTablesFromEarlierMigrations() throws {
        let sql = """
            operations:
              - sql:
                  up: CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)
                  down: DROP TABLE userz
            """
        let found = MigrationValidation.check([try file("0001_fruits.yaml", base), try file("0002_users.yaml", sql)]).map(\.description)
        #expect(found.first?.hasPrefix("apps/shop/schema/0002_users.yaml:4:1") == true, "got: \(found)")
        #expect(found.first?.contains("no such table: userz") == true)

        let later = """
            operations:
              - drop_column: {table: fruits, column: price, down: "0"}
            """
        #expect(MigrationValidation.check([try file("0001_fruits.yaml", base), try file("0002_drop.yaml", later)]).isEmpty)
        let missing = MigrationValidation.check([try file("0002_drop.yaml", later)]).map(\.description)
        #expect(missing == ["apps/shop/schema/0002_drop.yaml:2:1: operations[0] (drop_column): table fruits does not exist"])
    }

    @Test func theExampleAppPasses() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../manifests/apps/shop/schema").standardized
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        let migrations = try names.map { name in
            try MigrationParser.parse([UInt8](try Data(contentsOf: dir.appendingPathComponent(name))), fileName: name, path: name, checksum: name).get()
        }
        #expect(migrations.count == 2)
        #expect(MigrationValidation.check(migrations).isEmpty)
    }
}
