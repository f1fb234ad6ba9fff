import Foundation
import Manifest
import Testing
@testable import PostgresSchema

/// The pure parts of the PostgreSQL engine, without a database.
struct PlanTests {
    @Test func statementsRunAsOneBlockAndAFailureNamesItsOwnStatement() throws {
        let statements = ["SELECT 1;", "ALTER TABLE a\n  ADD COLUMN b text", "DO $teal$ BEGIN\n  IF true THEN\n    NULL;\n  END IF;\nEND $teal$", "DROP TABLE c  ;\n"]
        let block = try #require(PostgresSession.block(statements))
        #expect(block == "DO $teal_block$ BEGIN\nSELECT 1;\nALTER TABLE a\n  ADD COLUMN b text;\nDO $teal$ BEGIN\n  IF true THEN\n    NULL;\n  END IF;\nEND $teal$;\nDROP TABLE c;\nEND $teal_block$")
        // PL/pgSQL counts lines from the block's BEGIN: line 2 is the first statement.
        func at(_ line: Int) -> String? { PostgresSession.blockStatement(statements, context: "PL/pgSQL function inline_code_block line \(line) at SQL statement") }
        #expect(at(2) == statements[0])
        #expect(at(3) == statements[1] && at(4) == statements[1])
        #expect(at(5) == statements[2] && at(9) == statements[2])
        #expect(at(10) == statements[3])
        #expect(at(11) == nil && at(1) == nil)
        #expect(PostgresSession.blockStatement(statements, context: "SQL statement \"x\"") == nil)
        #expect(PostgresSession.block(["SELECT '$teal_block$'"]) == nil, "a statement holding the block's quote is not folded")
        #expect(PostgresSession.block([]) == nil)
    }

    @Test func statementsAreSplitAtTopLevelSemicolonsOnly() {
        let sql = """
            CREATE TABLE a (x text DEFAULT 'a;b'); -- a comment; still a comment
            CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;
            /* block; /* nested; */ */ INSERT INTO "we;ird" VALUES (E'it\\'s; fine');
            SELECT $1::text; ;
            """
        let parts = SQLStatements.split(sql)
        #expect(parts.count == 4, "\(parts)")
        #expect(parts[0] == "CREATE TABLE a (x text DEFAULT 'a;b')")
        #expect(parts[1].hasSuffix("$body$ SELECT 1; $body$"))
        #expect(parts[2].hasSuffix("INSERT INTO \"we;ird\" VALUES (E'it\\'s; fine')"))
        #expect(parts[3] == "SELECT $1::text")
        // A block comment never closed is sent with what it swallowed, for the server to refuse, not dropped.
        let continued = SQLStatements.split("INSERT INTO t VALUES (E'a\\'b'\n'c\\'; d'); SELECT 1")
        #expect(continued.count == 2, "\(continued)")
        let unclosed = SQLStatements.split("CREATE TABLE a (x int); /* see /* note */ CREATE TABLE b (y int); DROP TABLE old;")
        #expect(unclosed.count == 2 && unclosed[1].hasPrefix("/* see"), "\(unclosed)")
    }

    @Test func anotherSessionsQueryIsShownWithItsConstantsTakenOut() {
        let sql = """
            UPDATE "user's" SET password = 'hunter2', token = E'se\\'cret', pin = 4711, rate = 1.5e-3,
              body = $body$ private; text $body$, note = U&'d\\0061ta', bits = B'1010' -- card 4111 1111
            WHERE id = $1 AND t2.x3 = .25 /* nested /* 1234 */ comment */ AND a$b = 0x1F
            """
        let shown = SQLRedaction.redact(sql)
        #expect(shown == #"UPDATE "user's" SET password = '?', token = '?', pin = ?, rate = ?, body = '?', note = '?', bits = '?' WHERE id = $1 AND t2.x3 = ? AND a$b = ?"#, "\(shown)")
        for secret in ["hunter2", "cret", "4711", "private", "d\\0061ta", "1010", "4111", "1234", "1F"] {
            #expect(!shown.contains(secret), "\(secret) in \(shown)")
        }
        // Cut off by track_activity_query_size inside a constant: nothing of it is shown.
        #expect(SQLRedaction.redact("INSERT INTO t VALUES ('a secret that was cut") == "INSERT INTO t VALUES ('?'")
        #expect(SQLRedaction.redact("SELECT $q$ never closed") == "SELECT '?'")
        #expect(SQLRedaction.redact(String(repeating: "x, ", count: 200), limit: 20) == "x, x, x, x, x, x, x,…")
        // A tag of any non-ASCII characters, as PostgreSQL's scanner takes it.
        #expect(SQLRedaction.redact("SELECT $€$hunter2 secret$€$, 1") == "SELECT '?', ?")
        // A backslash in a plain string may escape its quote (standard_conforming_strings off): the rest is not shown.
        #expect(SQLRedaction.redact(#"SET a = 'ab\'cd', pw = 'hunter2'"#) == "SET a = '?' …")
        // An E'…' constant continued on the next line keeps its backslash escapes: one constant, nothing shown.
        #expect(SQLRedaction.redact("SET a = E'ab'\n  'c\\'d hunter2', b = 'x'") == "SET a = '?' '?', b = '?'")
        #expect(SQLRedaction.redact("SET a = E'ab' 'c\\'d', b = 'hunter2'") == "SET a = '?' '?' …", "without a newline it is no continuation")
        // A comment never closed hides nothing and shows nothing.
        #expect(SQLRedaction.redact("SELECT 1 /* hunter2 ") == "SELECT ?")
    }

    @Test func settingsReadThePasswordFileAndNeverShowThePassword() throws {
        let file = NSTemporaryDirectory() + "pgpass-\(UUID().uuidString)"
        try "# comment\nother:5432:*:teal:nope\n127.0.0.1:6543:shop:teal:s\\:ecret\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let s = try PostgresSettings(url: "postgres://teal@127.0.0.1:6543/shop?sslmode=disable&schema=app", environment: ["PGPASSFILE": file])
        #expect(s.password == "s:ecret")
        #expect(s.schema == "app")
        #expect(!s.description.contains("ecret"))
        let color = s.colorURL(shape: "0002_split_name")
        #expect(!color.contains("ecret"))
        #expect(color.contains("options=-c%20search_path%3Dapp_0002_split_name%20-c%20teal.shape%3D0002_split_name"), "\(color)")
        #expect(color.contains("sslmode=disable"))
        #expect(throws: PostgresSettingsError.self) { try PostgresSettings(url: "postgres://teal@h/db?password=x", environment: [:]) }
        #expect(throws: PostgresSettingsError.self) { try PostgresSettings(url: "postgres://teal@h/db?schema=Bad-Name", environment: [:]) }
        #expect(PostgresSettings.redacted("postgres://u:hunter2@h/db") == "postgres://u:***@h/db")
    }

    @Test func theSplitNamePlanKeepsBothShapesAndPutsTheDroppedColumnAside() throws {
        let catalog = Catalog(tables: [Catalog.Table(name: "users", columns: [
            .init(name: "id", type: "integer", notNull: true, defaultSQL: "nextval('users_id_seq'::regclass)"),
            .init(name: "name", type: "text", notNull: true, defaultSQL: nil),
        ], primaryKey: ["id"])])
        let m = Migration(name: "0002_split_name", number: 2, checksum: "x", operations: [
            .addColumn(AddColumn(table: "users", column: ColumnDefinition(name: "first_name", type: "text", nullable: true), up: "split_part(name, ' ', 1)")),
            .dropColumn(DropColumn(table: "users", column: "name", down: "first_name")),
        ])
        let plan = try MigrationPlan.make(m, catalog: catalog, schema: "public")
        #expect(plan.oldShape.table("users")?.columns.map(\.name) == ["id", "name"])
        #expect(plan.newShape.table("users")?.columns.map(\.name) == ["id", "first_name"])
        #expect(plan.backfills["users"]?.map(\.target) == ["first_name"])
        #expect(plan.dualWrites["users"]?.up.map(\.target) == ["first_name"])
        #expect(plan.dualWrites["users"]?.down.map(\.target) == ["name"])
        #expect(plan.expand.flatMap(\.statements).contains { $0.contains("DROP NOT NULL") }, "new-shape inserts must not fail on name")
        #expect(plan.contractInOrder.flatMap(\.statements).contains { $0.contains("RENAME COLUMN \"name\" TO \"_teal_dropped_") })
        let triggers = try DualWriteSQL.statements(plan, plan.dualWrites["users"]!)
        #expect(triggers.contains { $0.contains("NOT IN ('0002_split_name', 'backfill')") })
        #expect(triggers.contains { $0.contains("\"name\" \"public\".\"users\".\"name\"%TYPE := NEW.\"name\";") })
    }

    static let usersAndNotes = Catalog(tables: [
        Catalog.Table(name: "users", columns: [
            .init(name: "id", type: "integer", notNull: true, defaultSQL: "nextval('users_id_seq'::regclass)"),
            .init(name: "age", type: "integer", notNull: false, defaultSQL: nil),
        ], primaryKey: ["id"]),
        Catalog.Table(name: "notes", columns: [.init(name: "user_id", type: "integer", notNull: false, defaultSQL: nil)], primaryKey: []),
    ], indexes: ["users_pkey": "users"],
    indexDetails: [.init(name: "users_pkey", table: "users", definition: "CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)",
                         constraint: "users_pkey", constraintType: "p")],
    foreignKeys: [.init(name: "notes_user_id_fkey", table: "notes", referencedTable: "users", referencedColumns: ["id"],
                        definition: "FOREIGN KEY (user_id) REFERENCES users(id)")])

    @Test func createConstraintPutsTheConstraintOnTwinsFilledByUpAndDown() throws {
        let m = try pgMigration("0002_c", """
            operations:
              - create_constraint:
                  {table: users, name: age_ck, type: check, columns: [age], check: "age > 0 AND 'age' <> ''", up: {age: "abs(age)"}, down: {age: "age"}}
            """)
        let plan = try MigrationPlan.make(m, catalog: Self.usersAndNotes, schema: "public")
        let twin = plan.newShape.table("users")?.column("age")?.physical ?? ""
        #expect(twin.hasPrefix("_teal_new_"))
        #expect(plan.oldShape.table("users")?.column("age")?.physical == "age")
        #expect(plan.backfills["users"]?.map(\.target) == [twin])
        #expect(plan.dualWrites["users"]?.up.map(\.expression) == ["abs(age)"])
        #expect(plan.dualWrites["users"]?.down.map(\.target) == ["age"])
        #expect(plan.expand.flatMap(\.statements).contains { $0.contains("CHECK (\"\(twin)\" > 0 AND 'age' <> '') NOT VALID") },
                "the check reads the twin; strings are left alone: \(plan.expand)")
        #expect(plan.contractInOrder.flatMap(\.statements).contains { $0.contains("RENAME COLUMN \"age\" TO \"_teal_dropped_") })
    }

    @Test func whatCannotBeDoneOnlineToAPrimaryKeyIsRefusedWithTheWorkaround() throws {
        let toText = try pgMigration("0002_t", "operations:\n  - alter_column: {table: users, column: id, type: text}\n")
        let refused = #expect(throws: PlanError.self) { try MigrationPlan.make(toText, catalog: Self.usersAndNotes, schema: "public") }
        #expect(refused?.description.contains("operations[0] (alter_column): column users.id is referenced by foreign key notes.notes_user_id_fkey") == true, "\(String(describing: refused))")
        #expect(refused?.description.contains("drop_constraint") == true)
        let nullable = try pgMigration("0002_n", "operations:\n  - alter_column: {table: users, column: id, nullable: true}\n")
        let key = #expect(throws: PlanError.self) { try MigrationPlan.make(nullable, catalog: Self.usersAndNotes, schema: "public") }
        #expect(key?.description.contains("part of the primary key") == true)
        let widen = try pgMigration("0002_w", "operations:\n  - alter_column: {table: users, column: id, type: bigint}\n")
        let plan = try MigrationPlan.make(widen, catalog: Self.usersAndNotes, schema: "public")
        let contract = plan.contractInOrder.flatMap(\.statements).joined(separator: "\n")
        #expect(contract.contains("PRIMARY KEY USING INDEX"), "\(contract)")
        #expect(contract.contains("ALTER TABLE \"public\".\"notes\" VALIDATE CONSTRAINT"), "\(contract)")
        #expect(plan.expand.contains { $0.concurrently && $0.statements[0].contains("CREATE UNIQUE INDEX CONCURRENTLY") })
    }

    @Test func anOperationOnAMissingTableIsRefusedWithItsIndex() {
        let m = Migration(name: "0002_x", number: 2, checksum: "x", operations: [
            .dropColumn(DropColumn(table: "nope", column: "c")),
        ])
        #expect(throws: PlanError.self) { try MigrationPlan.make(m, catalog: Catalog(tables: []), schema: "public") }
        do { _ = try MigrationPlan.make(m, catalog: Catalog(tables: []), schema: "public") } catch {
            #expect("\(error)".contains("operations[0] (drop_column)"))
        }
    }
}

/// teal validate on PostgreSQL: a plan of every migration over the tables the ones before leave.
struct PostgresValidationTests {
    @Test func anOperationOnAColumnNoEarlierMigrationMadeIsAPathLineError() throws {
        let first = try pgMigration("0001_create_users", createUsers)
        let good = try pgMigration("0002_split_name", splitName)
        #expect(PostgresValidation.check([first, good]).isEmpty)
        let bad = try pgMigration("0003_bad", """
            operations:
              - rename_column: {table: users, from: first_name, to: given_name}
              - drop_column:
                  table: users
                  column: name
            """)
        let diagnostics = PostgresValidation.check([first, good, bad])
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.path == "apps/shop/schema/0003_bad.yaml")
        #expect(diagnostics.first?.line == 3, "\(diagnostics)")
        #expect(diagnostics.first?.message.contains("operations[1] (drop_column): column users.name does not exist") == true, "\(diagnostics)")
    }
}
