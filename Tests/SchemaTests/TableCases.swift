import Foundation
import GRDB
import Manifest
import Testing
@testable import Schema

enum TableCases {
    static let all: [OperationCase] = [
        OperationCase(name: "orders", setup: usersSetup, operations: [
            .createTable(CreateTable(name: "orders", columns: [
                Manifest.ColumnDefinition(name: "id", type: "serial", primaryKey: true),
                Manifest.ColumnDefinition(name: "user_id", type: "integer", references: ForeignKeyReference(name: "orders_user", table: "users", column: "id")),
                Manifest.ColumnDefinition(name: "code", type: "varchar(20)", unique: true),
                Manifest.ColumnDefinition(name: "total", type: "decimal(10,2)", default: "0",
                                          check: CheckConstraint(name: "total_positive", constraint: "total >= 0")),
                Manifest.ColumnDefinition(name: "note", type: "text", nullable: true, comment: "free text"),
            ], comment: "what users bought")),
            .createIndex(CreateIndex(name: "orders_user_idx", table: "orders", columns: [IndexField(column: "user_id"), IndexField(column: "total", sort: "DESC")])),
        ], started: { (s: Scratch) throws in
            try s.exec("INSERT INTO orders (user_id, code, total) VALUES (1, 'a', 9.5), (2, 'b', 3)")
            #expect(try s.rows("SELECT id FROM orders ORDER BY id") == [["1"], ["2"]])
            s.refuses("INSERT INTO orders (user_id, code) VALUES (1, 'a')", "UNIQUE")
            s.refuses("INSERT INTO orders (user_id, code, total) VALUES (1, 'c', -1)", "total_positive")
            s.refuses("INSERT INTO orders (code) VALUES ('d')", "NOT NULL")
        }, rolledBack: { (s: Scratch) throws in
            #expect(try s.objects(like: "orders%").isEmpty)
            #expect(try s.int("SELECT count(*) FROM \"_teal_kept_0002_orders_0\"") == 2)
        }, restarted: { (s: Scratch) throws in
            #expect(try s.int("SELECT count(*) FROM orders") == 2)
            #expect(try s.objects(like: "orders%") == ["orders", "orders_code_key", "orders_user_idx"])
        }, completed: { (s: Scratch) throws in
            try s.exec("INSERT INTO orders (user_id, code) VALUES (3, 'c')")
            #expect(try s.value("SELECT total FROM orders WHERE code = 'c'") == "0")
            #expect(try s.value("SELECT sql FROM sqlite_master WHERE name = 'orders'")?.contains("\"id\" integer PRIMARY KEY") == true)
        }),

        OperationCase(name: "sellers", setup: "", operations: [
            .createTable(CreateTable(name: "sellers", columns: [
                Manifest.ColumnDefinition(name: "name", type: "varchar(255)", primaryKey: true),
                Manifest.ColumnDefinition(name: "zip", type: "integer", primaryKey: true),
            ])),
            .createTable(CreateTable(name: "tickets", columns: [
                Manifest.ColumnDefinition(name: "id", type: "bigint", primaryKey: true, generated: GeneratedColumn(identity: "BY DEFAULT")),
                Manifest.ColumnDefinition(name: "seller_name", type: "varchar(255)"),
                Manifest.ColumnDefinition(name: "seller_zip", type: "integer"),
            ], constraints: [
                TableConstraint(name: "tickets_seller", type: .foreignKey, columns: ["seller_name", "seller_zip"],
                                references: TableForeignKeyReference(table: "sellers", columns: ["name", "zip"], onDelete: "CASCADE")),
                TableConstraint(name: "tickets_zip_positive", type: .check, check: "seller_zip > 0"),
                TableConstraint(name: "tickets_one_per_seller", type: .unique, columns: ["seller_name", "seller_zip"]),
            ])),
            .createTable(CreateTable(name: "tasks", columns: [
                Manifest.ColumnDefinition(name: "id", type: "serial"),
                Manifest.ColumnDefinition(name: "title", type: "text"),
            ])),
            .createConstraint(CreateConstraint(table: "tasks", name: "tasks_pkey", type: .primaryKey, columns: ["id"], up: ["id": "id"], down: ["id": "id"])),
        ], started: { (s: Scratch) throws in
            try s.exec("INSERT INTO sellers VALUES ('ann', 1), ('ann', 2)")
            s.refuses("INSERT INTO sellers VALUES ('ann', 1)", "UNIQUE")
            try s.exec("INSERT INTO tickets (seller_name, seller_zip) VALUES ('ann', 1)")
            s.refuses("INSERT INTO tickets (seller_name, seller_zip) VALUES ('ann', 1)", "UNIQUE")
            s.refuses("INSERT INTO tickets (seller_name, seller_zip) VALUES ('ann', 0)", "tickets_zip_positive")
            try s.exec("INSERT INTO tasks (title) VALUES ('first')")
            #expect(try s.value("SELECT id FROM tasks") == "1")
        }, restarted: { (s: Scratch) throws in
            #expect(try s.int("SELECT count(*) FROM sellers") == 2)
        }, completed: { (s: Scratch) throws in
            #expect(try s.rows("SELECT name FROM pragma_table_info('sellers') WHERE pk > 0 ORDER BY pk") == [["name"], ["zip"]])
            #expect(try s.rows("SELECT name FROM pragma_table_info('tasks') WHERE pk > 0") == [["id"]])
            try s.app.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA foreign_keys = ON")
                try db.execute(sql: "DELETE FROM sellers WHERE zip = 1")
                try db.execute(sql: "PRAGMA foreign_keys = OFF")
            }
            #expect(try s.int("SELECT count(*) FROM tickets") == 0)
        }),

        OperationCase(name: "drop_logs", setup: usersSetup + "CREATE TABLE logs (id INTEGER PRIMARY KEY, line TEXT);",
                      operations: [.dropTable(DropTable(name: "logs"))], started: { (s: Scratch) throws in
            try s.exec("INSERT INTO logs (line) VALUES ('old shape still writes')")
        }, rolledBack: { (s: Scratch) throws in
            #expect(try s.int("SELECT count(*) FROM logs") == 1)
        }, completed: { (s: Scratch) throws in
            #expect(try s.objects(like: "logs").isEmpty)
        }),

        OperationCase(name: "indexes", setup: usersSetup + "CREATE INDEX users_age ON users (age);", operations: [
            .createIndex(CreateIndex(name: "users_name_key", table: "users", columns: ["name"], unique: true)),
            .createIndex(CreateIndex(name: "users_old", table: "users", columns: [IndexField(column: "id")], predicate: "age > 40")),
            .dropIndex(DropIndex(name: "users_age")),
        ], started: { (s: Scratch) throws in
            #expect(try s.objects(like: "users_%").sorted() == ["users_age", "users_name_key", "users_old"])
            s.refuses("INSERT INTO users (name) VALUES ('Cher')", "UNIQUE")
        }, rolledBack: { (s: Scratch) throws in
            #expect(try s.objects(like: "users_%") == ["users_age"])
        }, completed: { (s: Scratch) throws in
            #expect(try s.objects(like: "users_%") == ["users_name_key", "users_old"])
            #expect(try s.value("SELECT sql FROM sqlite_master WHERE name = 'users_old'")?.hasSuffix("WHERE age > 40") == true)
        }),

        OperationCase(name: "raw", setup: usersSetup, operations: [
            .sql(RawSQL(up: "CREATE VIEW adults AS SELECT * FROM users WHERE age >= 18", down: "DROP VIEW adults")),
            .sql(RawSQL(up: "CREATE INDEX users_by_age ON users (age)", onComplete: true)),
            .setReplicaIdentity(SetReplicaIdentity(table: "users", type: "full")),
        ], started: { (s: Scratch) throws in
            #expect(try s.int("SELECT count(*) FROM adults") == 4)
            #expect(try s.objects(like: "users_by_age").isEmpty)
        }, rolledBack: { (s: Scratch) throws in
            #expect(try s.objects(like: "adults").isEmpty)
        }, completed: { (s: Scratch) throws in
            #expect(try s.objects(like: "adults") == ["adults"])
            #expect(try s.objects(like: "users_by_age") == ["users_by_age"])
        }),
    ]
}
