import Foundation
import Testing
@testable import Manifest

/// pgroll's spelling and shapes, read into the one model.
@Suite struct PgrollVocabularyTests {
    func parse(_ text: String, _ file: String = "0001_all.yaml") throws -> Migration {
        try MigrationParser.parse(Array(text.utf8), fileName: file, path: "schema/\(file)", checksum: "c").get()
    }

    func errors(_ text: String, _ file: String = "0001_all.yaml") -> [String] {
        guard case .failure(let e) = MigrationParser.parse(Array(text.utf8), fileName: file, path: "schema/\(file)", checksum: "c") else { return [] }
        return e.diagnostics.map(\.description)
    }

    static let everything = """
        name: all_constructs
        version_schema: all_constructs_v1
        operations:
          - create_table:
              name: tickets
              comment: one row per ticket
              columns:
                - name: id
                  type: bigint
                  pk: true
                  generated:
                    identity:
                      user_specified_values: BY DEFAULT
                - name: seller
                  type: varchar(255)
                  unique: true
                  comment: who sold it
                  check: {name: seller_length, constraint: length(seller) > 0}
                  references: {name: fk_seller, table: sellers, column: name, on_delete: CASCADE, on_update: NO ACTION, match_type: SIMPLE, deferrable: true, initially_deferred: true}
                - name: note
                  type: text
                  nullable: true
                  default: "'none'"
                - {name: shout, type: text, generated: {expression: upper(note)}}
              constraints:
                - {name: one_per_seller, type: unique, columns: [seller, note]}
                - {name: note_check, type: check, check: "note <> ''"}
                - name: fk_pair
                  type: foreign_key
                  columns: [seller]
                  references: {table: sellers, columns: [name], on_delete: SET NULL}
          - alter_column:
              table: tickets
              column: note
              type: text
              default: null
              nullable: false
              comment: null
              unique: {name: note_unique}
              check: {name: note_len, constraint: length(note) < 100}
              references: {name: fk_note, table: notes, column: body}
              up: coalesce(note, '')
              down: note
          - create_index:
              name: idx_tickets
              table: tickets
              columns:
                - column: seller
                  sort: DESC
                  collate: nocase
              unique: true
              predicate: note IS NOT NULL
          - create_constraint:
              type: check
              table: tickets
              name: check_pair
              columns: [seller, note]
              check: seller <> note
              up: {seller: seller, note: "note || '!'"}
              down: {seller: seller, note: note}
          - drop_constraint: {table: tickets, name: seller_length, up: seller, down: seller}
          - drop_multicolumn_constraint: {table: tickets, name: check_pair, up: {seller: seller}, down: {seller: seller, note: note}}
          - rename_constraint: {table: tickets, from: note_check, to: note_checked}
          - set_replica_identity: {table: tickets, identity: {type: index, index: idx_tickets}}
          - sql: {up: "UPDATE tickets SET note = 'x'", onComplete: true}
          - drop_table: {name: old_tickets}
        """

    @Test func readsEveryConstructInPgrollsShape() throws {
        let m = try parse(Self.everything)
        #expect(m.declaredName == "all_constructs")
        #expect(m.versionSchema == "all_constructs_v1")
        #expect(m.operations.map(\.kind) == ["create_table", "alter_column", "create_index", "create_constraint", "drop_constraint",
                                             "drop_multicolumn_constraint", "rename_constraint", "set_replica_identity", "sql", "drop_table"])
        guard case .createTable(let t) = m.operations[0], case .alterColumn(let a) = m.operations[1], case .createIndex(let i) = m.operations[2],
              case .createConstraint(let c) = m.operations[3], case .sql(let sql) = m.operations[8], case .dropTable(let d) = m.operations[9],
              case .setReplicaIdentity(let r) = m.operations[7] else {
            Issue.record("wrong operations: \(m.operations.map(\.kind))"); return
        }
        #expect(t.name == "tickets" && t.comment == "one row per ticket")
        #expect(t.columns[0].primaryKey && t.columns[0].generated == GeneratedColumn(identity: "BY DEFAULT"))
        #expect(t.columns[1].nullable == false, "nullable defaults to false, as in pgroll")
        #expect(t.columns[1].unique && t.columns[1].comment == "who sold it")
        #expect(t.columns[1].check == CheckConstraint(name: "seller_length", constraint: "length(seller) > 0"))
        #expect(t.columns[1].references == ForeignKeyReference(name: "fk_seller", table: "sellers", column: "name", onDelete: "CASCADE",
                                                                onUpdate: "NO ACTION", matchType: "SIMPLE", deferrable: true, initiallyDeferred: true))
        #expect(t.columns[2].nullable && t.columns[2].default == "'none'")
        #expect(t.columns[3].generated == GeneratedColumn(expression: "upper(note)"))
        #expect(t.constraints.map(\.type) == [.unique, .check, .foreignKey])
        #expect(t.constraints[2].references == TableForeignKeyReference(table: "sellers", columns: ["name"], onDelete: "SET NULL"))
        #expect(a.name == nil && a.type == "text" && a.dropDefault && a.default == nil && a.dropComment && a.nullable == false)
        #expect(a.unique == UniqueConstraint(name: "note_unique") && a.check?.name == "note_len" && a.references?.table == "notes")
        #expect(i.columns == [IndexField(column: "seller", sort: "DESC", collate: "nocase")] && i.unique && i.predicate == "note IS NOT NULL")
        #expect(c.type == .check && c.up == ["seller": "seller", "note": "note || '!'"] && c.check == "seller <> note")
        #expect(r.type == "index" && r.index == "idx_tickets")
        #expect(sql.onComplete)
        #expect(d.name == "old_tickets")
    }

    @Test func recordsTheLineOfEveryField() throws {
        let m = try parse(Self.everything)
        let source = try #require(m.source)
        #expect(source.line(operation: 0) == 4)
        #expect(source.line(operation: 0, field: "columns[1].check.constraint") == 18)
        #expect(source.line(operation: 1, field: "up") == 42)
        #expect(source.line(operation: 99) == 1)
    }

    @Test func jsonFilesReadLikeYAML() throws {
        let json = """
            {
              "name": "create_products",
              "operations": [
                {"create_table": {"name": "products", "columns": [
                  {"name": "id", "type": "serial", "pk": true},
                  {"name": "name", "type": "varchar(255)", "unique": true},
                  {"name": "price", "type": "decimal(10,2)", "nullable": true}]}},
                {"create_index": {"name": "idx_name", "table": "products", "columns": [{"column": "name"}]}}
              ]
            }
            """
        let yaml = """
            operations:
              - create_table:
                  name: products
                  columns:
                    - {name: id, type: serial, pk: true}
                    - {name: name, type: varchar(255), unique: true}
                    - {name: price, type: "decimal(10,2)", nullable: true}
              - create_index: {name: idx_name, table: products, columns: [{column: name}]}
            """
        let fromJSON = try parse(json, "0002_create_products.json")
        let fromYAML = try parse(yaml, "0002_create_products.yaml")
        #expect(fromJSON.operations == fromYAML.operations)
        #expect(fromJSON.name == "0002_create_products" && fromJSON.declaredName == "create_products")
        #expect(fromJSON.source?.line(operation: 1) == 8)
    }

    @Test func tealsEarlierSpellingsStillRead() throws {
        let m = try parse("""
            operations:
              - create_table:
                  table: users
                  columns:
                    - {name: id, type: integer, primary_key: true}
                    - {name: team, type: integer, nullable: true, references: "teams(id)", check: "team > 0"}
              - create_index: {name: idx_team, table: users, columns: [team]}
              - drop_table: {table: old}
            """)
        guard case .createTable(let t) = m.operations[0], case .createIndex(let i) = m.operations[1] else { Issue.record("wrong"); return }
        #expect(t.name == "users" && t.columns[0].primaryKey)
        #expect(t.columns[1].references == ForeignKeyReference(table: "teams", column: "id"))
        #expect(t.columns[1].check == CheckConstraint(constraint: "team > 0"))
        #expect(i.columns == [IndexField(column: "team")])
    }

    @Test func refusesWhatPgrollRefuses() {
        #expect(errors("operations:\n  - create_table: {name: t, table: t, columns: [{name: a, type: int}]}\n").contains { $0.contains("has both 'name' and 'table'") })
        #expect(errors("operations:\n  - sql: {up: 'SELECT 1', down: 'SELECT 2', onComplete: true}\n").contains { $0.contains("down cannot be combined with onComplete") })
        #expect(errors("operations:\n  - alter_column: {table: t, column: c}\n").contains { $0.contains("changes nothing") })
        #expect(errors("operations:\n  - create_index: {name: i, table: t, columns: [{column: c}], method: bitmap}\n").contains { $0.contains("method 'bitmap'") })
        #expect(errors("operations:\n  - set_replica_identity: {table: t, identity: {type: index}}\n").contains { $0.contains("type index needs `index`") })
        #expect(errors("operations:\n  - drop_table: {name: t}\n", "0001_x.txt").contains { $0.contains("NNNN_name.json") })
    }

    /// A definition stored by teal before pgroll's spelling (a database migrated then) still reads.
    @Test func earlierStoredDefinitionsRead() throws {
        let stored = """
            {"checksum":"c","name":"0001_x","number":1,"operations":[
              {"create_table":{"columns":[{"name":"id","nullable":true,"primary_key":true,"type":"integer","unique":false},
                {"check":"n > 0","name":"n","nullable":false,"primary_key":false,"references":"teams(id)","type":"integer","unique":true}],"table":"t"}},
              {"alter_column":{"column":"n","table":"t","name":"m","unique":true,"check":"m > 1"}},
              {"create_index":{"columns":["n"],"name":"i","table":"t","unique":false}},
              {"drop_table":{"table":"old"}},
              {"sql":{"up":"SELECT 1"}}]}
            """
        let m = try JSONDecoder().decode(Migration.self, from: Data(stored.utf8))
        guard case .createTable(let t) = m.operations[0], case .alterColumn(let a) = m.operations[1], case .createIndex(let i) = m.operations[2],
              case .dropTable(let d) = m.operations[3] else { Issue.record("wrong"); return }
        #expect(t.name == "t" && t.columns[0].primaryKey && t.columns[0].nullable)
        #expect(t.columns[1].check == CheckConstraint(constraint: "n > 0") && t.columns[1].references == ForeignKeyReference(table: "teams", column: "id"))
        #expect(a.unique == UniqueConstraint() && a.check?.constraint == "m > 1" && !a.dropDefault)
        #expect(i.columns == [IndexField(column: "n")] && d.name == "old")
    }

    @Test func storedDefinitionsRoundTrip() throws {
        let m = try parse(Self.everything)
        let decoded = try JSONDecoder().decode(Migration.self, from: JSONEncoder().encode(m))
        #expect(decoded == m)
        #expect(decoded.source == nil)
    }
}
