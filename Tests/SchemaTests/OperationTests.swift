import Foundation
import GRDB
import Manifest
import Testing
@testable import Schema

/// For each operation: start, then read and write both shapes through a second connection; roll back, check;
/// start again, check; complete, check.
@Suite struct OperationTests {
    @Test func splitNameBothShapesRollbackRestartComplete() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine(batchSize: 2)
        try engine.start(splitName)
        #expect(try s.rows("SELECT first_name, last_name FROM users ORDER BY id") == [["Ada", "Lovelace"], ["Alan", "Turing"], ["Grace", "Hopper"], ["Cher", ""]])
        #expect(try engine.status().inFlight?.state == .started)

        try s.exec("INSERT INTO users (name, age) VALUES ('Edsger Dijkstra', 72)")
        #expect(try s.rows("SELECT first_name, last_name FROM users WHERE name = 'Edsger Dijkstra'") == [["Edsger", "Dijkstra"]])
        try s.exec("INSERT INTO users (first_name, last_name, age) VALUES ('Barbara', 'Liskov', 84)")
        #expect(try s.value("SELECT name FROM users WHERE first_name = 'Barbara'") == "Barbara Liskov")
        try s.exec("UPDATE users SET name = 'Ada King' WHERE id = 1")
        #expect(try s.rows("SELECT first_name, last_name FROM users WHERE id = 1") == [["Ada", "King"]])
        try s.exec("UPDATE users SET last_name = 'Hopper-Murray' WHERE id = 3")
        #expect(try s.rows("SELECT name, first_name FROM users WHERE id = 3") == [["Grace Hopper-Murray", "Grace"]])
        try s.exec("UPDATE users SET age = 78 WHERE id = 4")
        #expect(try s.rows("SELECT name, first_name, last_name FROM users WHERE id = 4") == [["Cher", "Cher", ""]])
        try s.exec("DELETE FROM users WHERE first_name = 'Alan'")
        try s.exec("DELETE FROM users WHERE name = 'Edsger Dijkstra'")
        #expect(try s.int("SELECT count(*) FROM users") == 4)

        try engine.rollback("0002_split_name")
        #expect(try s.columns("users") == ["id", "name", "age"])
        #expect(try s.notNull("users", "name"))
        #expect(try s.rows("SELECT name FROM users ORDER BY id") == [["Ada King"], ["Grace Hopper-Murray"], ["Cher"], ["Barbara Liskov"]])
        #expect(try s.objects(like: "\\_teal\\_0002%").isEmpty || s.objects(like: "_teal_0002%").allSatisfy { !$0.contains("trigger") })
        #expect(try s.int("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'") == 0)
        #expect(try engine.status().migrations.first?.state == .rolledBack)
        #expect(try s.integrity() == "ok")

        try engine.start(splitName)
        #expect(try s.rows("SELECT first_name, last_name FROM users ORDER BY id") == [["Ada", "King"], ["Grace", "Hopper-Murray"], ["Cher", ""], ["Barbara", "Liskov"]])
        try s.exec("INSERT INTO users (first_name, last_name) VALUES ('Ken', 'Thompson')")

        try engine.complete("0002_split_name")
        #expect(try s.columns("users") == ["id", "age", "first_name", "last_name"])
        #expect(try s.int("SELECT count(*) FROM users") == 5)
        #expect(try s.int("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' OR name LIKE '_teal_guard'") == 0)
        #expect(throws: (any Error).self) { try s.exec("INSERT INTO users (name) VALUES ('Old Shape')") }
        #expect(try engine.status().lastCompleted?.name == "0002_split_name")
        #expect(try s.integrity() == "ok")
    }

    @Test func addColumnWithoutUpKeepsValuesAsideAcrossRollback() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let m = migration("0002_email", [.addColumn(AddColumn(table: "users", column: column("email")))])
        try engine.start(m)
        try s.exec("UPDATE users SET email = 'ada@example.com' WHERE id = 1")
        try s.exec("INSERT INTO users (name, email) VALUES ('Linus Torvalds', 'linus@example.com')")
        try s.exec("INSERT INTO users (name) VALUES ('Old Writer')")
        try engine.rollback(m.name)
        #expect(try !s.columns("users").contains("email"))
        #expect(try s.int("SELECT count(*) FROM \"_teal_kept_0002_email_0\"") == 2)
        try s.exec("UPDATE users SET age = 50 WHERE name = 'Linus Torvalds'")
        try engine.start(m)
        #expect(try s.rows("SELECT name, email FROM users WHERE email IS NOT NULL ORDER BY id") == [["Ada Lovelace", "ada@example.com"], ["Linus Torvalds", "linus@example.com"]])
        #expect(try s.objects(like: "_teal_kept%").isEmpty)
        try engine.complete(m.name)
        #expect(try s.columns("users").contains("email"))
    }

    @Test func addColumnConstraintsWaitForComplete() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let m = migration("0002_score", [.addColumn(AddColumn(table: "users", column: column("score", "integer", nullable: false, unique: true, check: "score >= 0"), up: "id * 10"))])
        try engine.start(m)
        #expect(try s.rows("SELECT score FROM users ORDER BY id") == [["10"], ["20"], ["30"], ["40"]])
        try s.exec("INSERT INTO users (id, name) VALUES (9, 'Old Shape')")
        #expect(try s.value("SELECT score FROM users WHERE id = 9") == "90")
        try s.exec("INSERT INTO users (name, score) VALUES ('New Shape', 7)")
        try engine.rollback(m.name)
        #expect(try !s.columns("users").contains("score"))
        try engine.start(m)
        try engine.complete(m.name)
        #expect(try s.notNull("users", "score"))
        #expect(throws: (any Error).self) { try s.exec("INSERT INTO users (name, score) VALUES ('X', NULL)") }
        #expect(throws: (any Error).self) { try s.exec("INSERT INTO users (name, score) VALUES ('X', -1)") }
        #expect(throws: (any Error).self) { try s.exec("INSERT INTO users (name, score) VALUES ('X', 10)") }
        try s.exec("INSERT INTO users (name, score) VALUES ('Y', 11)")
        #expect(try s.integrity() == "ok")
    }

    @Test func addColumnLiteralDefault() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let m = migration("0002_status", [.addColumn(AddColumn(table: "users", column: column("status", nullable: false, default: "'active'")))])
        try engine.start(m)
        #expect(try s.int("SELECT count(*) FROM users WHERE status = 'active'") == 4)
        try s.exec("INSERT INTO users (name) VALUES ('Old')")
        try engine.complete(m.name)
        #expect(try s.notNull("users", "status"))
        try s.exec("INSERT INTO users (name) VALUES ('New')")
        #expect(try s.value("SELECT status FROM users WHERE name = 'New'") == "active")
    }

    @Test func renameColumnBothNames() throws {
        let s = try Scratch(usersSetup + "CREATE INDEX users_name ON users (name);")
        let engine = try s.engine()
        let m = migration("0002_rename", [.renameColumn(RenameColumn(table: "users", from: "name", to: "full_name"))])
        try engine.start(m)
        #expect(try s.value("SELECT full_name FROM users WHERE id = 2") == "Alan Turing")
        try s.exec("INSERT INTO users (name) VALUES ('Old Shape')")
        try s.exec("INSERT INTO users (full_name) VALUES ('New Shape')")
        try s.exec("UPDATE users SET full_name = 'Alan M. Turing' WHERE id = 2")
        try s.exec("UPDATE users SET name = 'Grace B. Hopper' WHERE id = 3")
        #expect(try s.rows("SELECT name, full_name FROM users WHERE id IN (2, 3) ORDER BY id") == [["Alan M. Turing", "Alan M. Turing"], ["Grace B. Hopper", "Grace B. Hopper"]])
        #expect(try s.rows("SELECT name, full_name FROM users WHERE id > 4 ORDER BY id") == [["Old Shape", "Old Shape"], ["New Shape", "New Shape"]])
        try engine.rollback(m.name)
        #expect(try s.columns("users") == ["id", "name", "age"])
        #expect(try s.notNull("users", "name"))
        #expect(try s.value("SELECT name FROM users WHERE id = 6") == "New Shape")
        try engine.start(m)
        try engine.complete(m.name)
        #expect(try s.columns("users") == ["id", "full_name", "age"])
        #expect(try s.notNull("users", "full_name"))
        #expect(try s.value("SELECT full_name FROM users WHERE id = 2") == "Alan M. Turing")
        #expect(try s.value("SELECT sql FROM sqlite_master WHERE name = 'users_name'")?.contains("full_name") == true)
        #expect(try s.integrity() == "ok")
    }

    @Test func alterColumnTypeWithNewName() throws {
        let s = try Scratch("CREATE TABLE items (id INTEGER PRIMARY KEY, price TEXT NOT NULL); INSERT INTO items (price) VALUES ('1.50'), ('20');")
        let engine = try s.engine()
        let m = migration("0002_cents", [.alterColumn(AlterColumn(table: "items", column: "price", name: "price_cents", type: "integer",
                                                                   nullable: false, check: "price_cents >= 0",
                                                                   up: "CAST(round(price * 100) AS INTEGER)", down: "printf('%.2f', price_cents / 100.0)"))])
        try engine.start(m)
        #expect(try s.rows("SELECT price_cents FROM items ORDER BY id") == [["150"], ["2000"]])
        try s.exec("INSERT INTO items (price) VALUES ('3.25')")
        try s.exec("INSERT INTO items (price_cents) VALUES (999)")
        try s.exec("UPDATE items SET price_cents = 175 WHERE id = 1")
        #expect(try s.rows("SELECT price, price_cents FROM items ORDER BY id") == [["1.75", "175"], ["20", "2000"], ["3.25", "325"], ["9.99", "999"]])
        try engine.rollback(m.name)
        #expect(try s.columns("items") == ["id", "price"])
        #expect(try s.notNull("items", "price"))
        try engine.start(m)
        try engine.complete(m.name)
        #expect(try s.columns("items") == ["id", "price_cents"])
        #expect(try s.notNull("items", "price_cents"))
        #expect(throws: (any Error).self) { try s.exec("INSERT INTO items (price_cents) VALUES (-5)") }
    }

    @Test func alterColumnWithoutNewNameIsRefusedWithAdvice() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let m = migration("0002_age", [.alterColumn(AlterColumn(table: "users", column: "age", type: "text"))])
        let error = #expect(throws: SchemaError.self) { try engine.validate(m) }
        #expect(error?.description.contains("new name") == true)
        #expect(error?.description.contains("operations[0] (alter_column)") == true)
        #expect(try s.columns("users") == ["id", "name", "age"])
    }

    @Test func createTableKeptAsideOnRollback() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let m = migration("0002_orders", [
            .createTable(CreateTable(table: "orders", columns: [column("id", "integer", primaryKey: true), column("user_id", "integer", nullable: false), column("total", "real", default: "0")])),
            .createIndex(CreateIndex(name: "orders_user", table: "orders", columns: ["user_id"])),
        ])
        try engine.start(m)
        try s.exec("INSERT INTO orders (user_id, total) VALUES (1, 9.5), (2, 3)")
        try engine.rollback(m.name)
        #expect(try s.objects(like: "orders%").isEmpty)
        #expect(try s.int("SELECT count(*) FROM \"_teal_kept_0002_orders_0\"") == 2)
        try engine.start(m)
        #expect(try s.int("SELECT count(*) FROM orders") == 2)
        #expect(try s.objects(like: "orders%") == ["orders", "orders_user"])
        try engine.complete(m.name)
        try s.exec("INSERT INTO orders (user_id) VALUES (3)")
        #expect(try s.value("SELECT total FROM orders WHERE user_id = 3") == "0.0")
    }

    @Test func dropTableStaysUntilComplete() throws {
        let s = try Scratch(usersSetup + "CREATE TABLE logs (id INTEGER PRIMARY KEY, line TEXT);")
        let engine = try s.engine()
        let m = migration("0002_drop_logs", [.dropTable(DropTable(table: "logs"))])
        try engine.start(m)
        try s.exec("INSERT INTO logs (line) VALUES ('old shape still writes')")
        try engine.rollback(m.name)
        #expect(try s.int("SELECT count(*) FROM logs") == 1)
        try engine.start(m)
        try engine.complete(m.name)
        #expect(try s.objects(like: "logs").isEmpty)
    }

    @Test func renameTableViewBothWays() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let m = migration("0002_people", [
            .renameTable(RenameTable(from: "users", to: "people")),
            .addColumn(AddColumn(table: "people", column: column("nickname"), up: "lower(name)")),
        ])
        try engine.start(m)
        #expect(try s.value("SELECT nickname FROM people WHERE id = 1") == "ada lovelace")
        try s.exec("INSERT INTO people (name, nickname) VALUES ('Margaret Hamilton', 'maggie')")
        #expect(try s.rows("SELECT name, age, nickname FROM users WHERE id = 5") == [["Margaret Hamilton", "0", "maggie"]])
        try s.exec("UPDATE people SET age = 40 WHERE id = 5")
        try s.exec("INSERT INTO users (name) VALUES ('Old Shape')")
        #expect(try s.value("SELECT nickname FROM people WHERE name = 'Old Shape'") == "old shape")
        try s.exec("DELETE FROM people WHERE id = 2")
        #expect(try s.int("SELECT count(*) FROM users") == 5)
        #expect(try s.value("SELECT age FROM users WHERE id = 5") == "40")
        try engine.rollback(m.name)
        #expect(try s.objects(like: "people").isEmpty)
        #expect(try s.columns("users") == ["id", "name", "age"])
        try engine.start(m)
        try engine.complete(m.name)
        #expect(try s.objects(like: "users").isEmpty)
        #expect(try s.value("SELECT type FROM sqlite_master WHERE name = 'people'") == "table")
        #expect(try s.int("SELECT count(*) FROM people") == 5)
    }

    @Test func createAndDropIndex() throws {
        let s = try Scratch(usersSetup + "CREATE INDEX users_age ON users (age);")
        let engine = try s.engine()
        let m = migration("0002_indexes", [
            .createIndex(CreateIndex(name: "users_name_key", table: "users", columns: ["name"], unique: true)),
            .dropIndex(DropIndex(name: "users_age")),
        ])
        try engine.start(m)
        #expect(try s.objects(like: "users_%").sorted() == ["users_age", "users_name_key"])
        #expect(throws: (any Error).self) { try s.exec("INSERT INTO users (name) VALUES ('Cher')") }
        try engine.rollback(m.name)
        #expect(try s.objects(like: "users_%") == ["users_age"])
        try engine.start(m)
        try engine.complete(m.name)
        #expect(try s.objects(like: "users_%") == ["users_name_key"])
    }

    @Test func rawSQLUpAndDown() throws {
        let s = try Scratch(usersSetup)
        let engine = try s.engine()
        let m = migration("0002_raw", [.sql(RawSQL(up: "CREATE VIEW adults AS SELECT * FROM users WHERE age >= 18", down: "DROP VIEW adults"))])
        try engine.start(m)
        #expect(try s.int("SELECT count(*) FROM adults") == 4)
        try engine.rollback(m.name)
        #expect(try s.objects(like: "adults").isEmpty)
        try engine.start(m)
        try engine.complete(m.name)
        #expect(try s.objects(like: "adults") == ["adults"])
    }
}
