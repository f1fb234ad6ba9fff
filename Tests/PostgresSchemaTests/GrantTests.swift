import Foundation
import Manifest
import Testing
import TestSupport
@testable import PostgresSchema
@testable import Schema

/// A login role of the test cluster that is not the owner of anything (roles are cluster-wide: unique names).
struct PGRole {
    let name: String
    let password = UUID().uuidString

    init(_ prefix: String, in s: PGScratch) throws {
        name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        try s.sql("CREATE ROLE \(name) LOGIN PASSWORD '\(password)'")
    }

    /// SQL as this role, connected as a color written for `migration` connects.
    @discardableResult
    func sql(_ text: String, as migration: String, in s: PGScratch) throws -> String {
        try s.cluster.psql(s.database, text, options: "-c search_path=\(s.engine.versionSchema(for: migration)) -c teal.shape=\(migration)",
                           role: (name, password))
    }

    /// True when `text` fails for this role for want of a privilege: on the relation ("permission denied"), or on
    /// the version schema (without USAGE, PostgreSQL leaves the schema out of the search_path, so the name is
    /// not found).
    func denied(_ text: String, as migration: String, in s: PGScratch) -> Bool {
        do {
            try sql(text, as: migration, in: s)
            return false
        } catch {
            let message = "\(error)"
            return message.contains("permission denied") || message.contains("relation \"items\" does not exist")
        }
    }

    /// True when `text` fails on the relation's privileges ("permission denied for table/view").
    func deniedOnRelation(_ text: String, as migration: String, in s: PGScratch) -> Bool {
        do {
            try sql(text, as: migration, in: s)
            return false
        } catch {
            return "\(error)".contains("permission denied for")
        }
    }
}

@Suite("PostgreSQL: version schemas carry the base tables' grants", .serialized)
struct PGGrantTests {
    static let setup = "0001_items"
    static let change = "0002_labels"

    @Test("a reader reads, a writer writes, a role without privileges gets nothing, in both shapes and after complete")
    func grantsCarryOver() async throws {
        guard postgresAvailable() else { return }
        let s = try PGScratch()
        try await s.engine.start(try pgMigration(Self.setup, """
            operations:
              - create_table:
                  name: items
                  columns:
                    - {name: id, type: integer, pk: true}
                    - {name: name, type: text}
            """))
        try await s.engine.complete(Self.setup)
        let reader = try PGRole("reader", in: s), writer = try PGRole("writer", in: s), stranger = try PGRole("stranger", in: s)
        try s.sql("GRANT SELECT ON public.items TO \(reader.name)")
        try s.sql("GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO \(writer.name)")
        try s.sql("INSERT INTO items VALUES (1, 'one')")
        // Granted after 0001's version schema was made: the agent's housekeeping brings them in.
        #expect(reader.denied("SELECT name FROM items", as: Self.setup, in: s), "not yet in 0001's version schema")
        #expect(try await s.engine.refreshGrants() > 0)
        #expect(try reader.sql("SELECT name FROM items", as: Self.setup, in: s) == "one")
        #expect(try await s.engine.refreshGrants() == 0, "in line: nothing to do")

        try await s.engine.start(try pgMigration(Self.change, """
            operations:
              - add_column:
                  table: items
                  column: {name: label, type: text, nullable: true}
                  up: "upper(name)"
              - rename_column: {table: items, from: name, to: title}
            """))

        // Both shapes, as each role.
        for (shape, nameColumn) in [(Self.setup, "name"), (Self.change, "title")] {
            #expect(try reader.sql("SELECT \(nameColumn) FROM items WHERE id = 1", as: shape, in: s) == "one", "reader reads \(shape)")
            #expect(reader.deniedOnRelation("INSERT INTO items (id, \(nameColumn)) VALUES (100, 'x')", as: shape, in: s), "reader cannot insert in \(shape)")
            #expect(reader.deniedOnRelation("UPDATE items SET \(nameColumn) = 'x' WHERE id = 1", as: shape, in: s), "reader cannot update in \(shape)")
            #expect(reader.deniedOnRelation("DELETE FROM items WHERE id = 1", as: shape, in: s), "reader cannot delete in \(shape)")
            #expect(stranger.denied("SELECT count(*) FROM items", as: shape, in: s), "stranger cannot read \(shape)")
            #expect(stranger.denied("INSERT INTO items (id, \(nameColumn)) VALUES (101, 'x')", as: shape, in: s), "stranger cannot write \(shape)")
        }
        try writer.sql("INSERT INTO items (id, name) VALUES (2, 'two')", as: Self.setup, in: s)
        try writer.sql("INSERT INTO items (id, title, label) VALUES (3, 'three', 'III')", as: Self.change, in: s)
        try writer.sql("UPDATE items SET name = 'deux' WHERE id = 2", as: Self.setup, in: s)
        try writer.sql("INSERT INTO items (id, title) VALUES (4, 'four')", as: Self.change, in: s)
        try writer.sql("DELETE FROM items WHERE id = 4", as: Self.change, in: s)
        // The writer's old-shape writes went through the triggers like anyone's.
        #expect(try s.rows("SELECT id || ':' || title || ':' || coalesce(label, '-') FROM items ORDER BY id", as: Self.change)
                == ["1:one:ONE", "2:deux:DEUX", "3:three:III"])

        // A view's grant alone gives nothing: the view runs with the caller's privileges on the base table.
        try s.sql("GRANT USAGE ON SCHEMA \(s.engine.versionSchema(for: Self.change)) TO \(stranger.name)")
        try s.sql("GRANT SELECT ON \(s.engine.versionSchema(for: Self.change)).items TO \(stranger.name)")
        #expect(stranger.deniedOnRelation("SELECT count(*) FROM items", as: Self.change, in: s), "security_invoker: the base table decides")

        // Granted on the base table while the migration is in flight: complete carries it over, and revokes
        // what the base table no longer grants.
        let late = try PGRole("late", in: s)
        try s.sql("GRANT SELECT ON public.items TO \(late.name)")
        try await s.engine.complete(Self.change)
        #expect(try s.rows("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'public\\_0%' ORDER BY 1") == ["public_\(Self.change)"])
        #expect(try reader.sql("SELECT title FROM items WHERE id = 2", as: Self.change, in: s) == "deux")
        #expect(try late.sql("SELECT count(*) FROM items", as: Self.change, in: s) == "3")
        #expect(reader.deniedOnRelation("INSERT INTO items (id, title) VALUES (5, 'five')", as: Self.change, in: s))
        try writer.sql("INSERT INTO items (id, title, label) VALUES (5, 'five', 'V')", as: Self.change, in: s)
        try writer.sql("UPDATE items SET label = 'I' WHERE id = 1", as: Self.change, in: s)
        try writer.sql("DELETE FROM items WHERE id = 3", as: Self.change, in: s)
        #expect(try reader.sql("SELECT string_agg(id || '=' || label, ',' ORDER BY id) FROM items", as: Self.change, in: s) == "1=I,2=DEUX,5=V")
        #expect(stranger.denied("SELECT count(*) FROM items", as: Self.change, in: s), "stranger still cannot read")
        #expect(try s.rows("""
            SELECT count(*) FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
            WHERE c.relnamespace = '\(s.engine.versionSchema(for: Self.change))'::regnamespace AND a.grantee = '\(stranger.name)'::regrole
            """) == ["0"], "complete revoked the view grant the base table does not back")
        for role in [reader, writer, stranger, late] { try? s.sql("DROP OWNED BY \(role.name); DROP ROLE \(role.name)") }
    }

    @Test("grant statements follow the base tables, role by role, and only SELECT, INSERT, UPDATE and DELETE")
    func statementsArePure() {
        let g = VersionSchemaGrants(views: ["items": "items", "tags": "_tags"],
                                    base: ["items": ["app": ["SELECT", "INSERT", "TRUNCATE"], "PUBLIC": ["SELECT"]], "_tags": ["Odd \"Role\"": ["DELETE"]]],
                                    current: ["items": ["gone": ["SELECT"], "app": ["SELECT"]]],
                                    usage: ["gone"])
        #expect(g.statements(versionSchema: "public_0002") == [
            "GRANT SELECT ON \"public_0002\".\"items\" TO PUBLIC",
            "GRANT INSERT ON \"public_0002\".\"items\" TO \"app\"",
            "REVOKE SELECT ON \"public_0002\".\"items\" FROM \"gone\"",
            "GRANT DELETE ON \"public_0002\".\"tags\" TO \"Odd \"\"Role\"\"\"",
            "GRANT USAGE ON SCHEMA \"public_0002\" TO \"Odd \"\"Role\"\"\"",
            "GRANT USAGE ON SCHEMA \"public_0002\" TO PUBLIC",
            "GRANT USAGE ON SCHEMA \"public_0002\" TO \"app\"",
            "REVOKE USAGE ON SCHEMA \"public_0002\" FROM \"gone\"",
        ])
    }
}
