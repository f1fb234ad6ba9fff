import Foundation
import GRDB
import Manifest
import Testing
@testable import Schema

let ticketsSetup = """
    CREATE TABLE sellers (name TEXT NOT NULL, zip INTEGER NOT NULL, PRIMARY KEY (name, zip));
    INSERT INTO sellers VALUES ('alice', 1), ('bob', 2);
    CREATE TABLE tickets (id INTEGER PRIMARY KEY, sellers_name TEXT NOT NULL, sellers_zip INTEGER NOT NULL);
    INSERT INTO tickets (sellers_name, sellers_zip) VALUES ('alice', 1), ('bob', 2), ('carol', -3);
    """

let postsSetup = """
    CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL, score INTEGER,
        CONSTRAINT "title_length" CHECK (length(title) > 3),
        CONSTRAINT "score_range" CHECK (score BETWEEN 0 AND 10));
    CREATE UNIQUE INDEX posts_title_unique ON posts (title);
    INSERT INTO posts (title, score) VALUES ('first post', 1), ('second post', 2);
    """

enum ConstraintCases {
    static let all: [OperationCase] = [
        OperationCase(name: "unique_pair", setup: ticketsSetup, operations: [
            .createConstraint(CreateConstraint(table: "tickets", name: "unique_zip_name", type: .unique, columns: ["sellers_name", "sellers_zip"],
                                               up: ["sellers_name": "sellers_name", "sellers_zip": "sellers_zip"],
                                               down: ["sellers_name": "sellers_name", "sellers_zip": "sellers_zip"])),
        ], started: { (s: Scratch) throws in
            // The old shape may still repeat a pair until complete; here it does not.
            try s.exec("INSERT INTO tickets (sellers_name, sellers_zip) VALUES ('dave', 4)")
        }, completed: { (s: Scratch) throws in
            s.refuses("INSERT INTO tickets (sellers_name, sellers_zip) VALUES ('dave', 4)", "UNIQUE")
            #expect(try s.objects(like: "unique_zip_name") == ["unique_zip_name"])
        }),

        OperationCase(name: "check_pair", setup: ticketsSetup, operations: [
            .createConstraint(CreateConstraint(table: "tickets", name: "check_zip_name", type: .check, columns: ["sellers_name", "sellers_zip"],
                                               check: "sellers_name = 'alice' OR sellers_zip > 0",
                                               up: ["sellers_name": "sellers_name",
                                                    "sellers_zip": "SELECT CASE WHEN sellers_name != 'alice' AND sellers_zip <= 0 THEN 123 ELSE sellers_zip END"],
                                               down: ["sellers_name": "sellers_name", "sellers_zip": "sellers_zip"])),
        ], started: { (s: Scratch) throws in
            // The old shape can still write a row the constraint refuses; the new shape gets `up`'s value at complete.
            try s.exec("INSERT INTO tickets (sellers_name, sellers_zip) VALUES ('erin', 0)")
            #expect(try s.rows("SELECT sellers_zip FROM tickets ORDER BY id") == [["1"], ["2"], ["-3"], ["0"]])
        }, rolledBack: { (s: Scratch) throws in
            #expect(try s.rows("SELECT sellers_zip FROM tickets ORDER BY id") == [["1"], ["2"], ["-3"], ["0"]])
        }, completed: { (s: Scratch) throws in
            #expect(try s.rows("SELECT sellers_zip FROM tickets ORDER BY id") == [["1"], ["2"], ["123"], ["123"]])
            #expect(try s.columns("tickets") == ["id", "sellers_name", "sellers_zip"])
            #expect(try s.notNull("tickets", "sellers_zip"))
            s.refuses("INSERT INTO tickets (sellers_name, sellers_zip) VALUES ('frank', -1)", "check_zip_name")
        }),

        OperationCase(name: "fk_pair", setup: ticketsSetup, operations: [
            .createConstraint(CreateConstraint(table: "tickets", name: "fk_sellers", type: .foreignKey, columns: ["sellers_name", "sellers_zip"],
                                               references: TableForeignKeyReference(table: "sellers", columns: ["name", "zip"]),
                                               up: ["sellers_name": "sellers_name", "sellers_zip": "sellers_zip"],
                                               down: ["sellers_name": "sellers_name", "sellers_zip": "sellers_zip"])),
            .sql(RawSQL(up: "DELETE FROM tickets WHERE sellers_name = 'carol'", onComplete: true)),
        ], started: { (s: Scratch) throws in
            try s.exec("INSERT INTO tickets (sellers_name, sellers_zip) VALUES ('alice', 1)")
        }, completed: { (s: Scratch) throws in
            let sql = try s.value("SELECT sql FROM sqlite_master WHERE name = 'tickets'") ?? ""
            #expect(sql.contains("CONSTRAINT \"fk_sellers\" FOREIGN KEY (\"sellers_name\", \"sellers_zip\") REFERENCES \"sellers\" (\"name\", \"zip\")"))
            try s.app.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA foreign_keys = ON")
                defer { try? db.execute(sql: "PRAGMA foreign_keys = OFF") }
                #expect(throws: (any Error).self) { try db.execute(sql: "INSERT INTO tickets (sellers_name, sellers_zip) VALUES ('zed', 9)") }
            }
        }),

        OperationCase(name: "drop_check", setup: postsSetup, operations: [
            .dropConstraint(DropConstraint(table: "posts", name: "title_length", up: "title",
                                           down: "SELECT CASE WHEN length(title) <= 3 THEN title || '...' ELSE title END")),
        ], started: { (s: Scratch) throws in
            try s.exec("INSERT INTO posts (title) VALUES ('hi')")
        }, rolledBack: { (s: Scratch) throws in
            #expect(try s.value("SELECT title FROM posts WHERE id = 3") == "hi...")
            s.refuses("INSERT INTO posts (title) VALUES ('no')", "title_length")
        }, completed: { (s: Scratch) throws in
            try s.exec("INSERT INTO posts (title) VALUES ('ok')")
            s.refuses("INSERT INTO posts (title, score) VALUES ('fine title', 11)", "score_range")
        }),

        OperationCase(name: "drop_unique", setup: postsSetup, operations: [
            .dropConstraint(DropConstraint(table: "posts", name: "posts_title_unique", up: "title", down: "title || ' (' || id || ')'")),
        ], started: { (s: Scratch) throws in
            try s.exec("INSERT INTO posts (title) VALUES ('first post')")
        }, rolledBack: { (s: Scratch) throws in
            #expect(try s.rows("SELECT title FROM posts ORDER BY id") == [["first post"], ["second post"], ["first post (3)"]])
        }, completed: { (s: Scratch) throws in
            try s.exec("INSERT INTO posts (title) VALUES ('second post')")
            #expect(try s.objects(like: "posts_title_unique").isEmpty)
        }),

        OperationCase(name: "drop_pair_check", setup: ticketsSetup.replacingOccurrences(of: "sellers_zip INTEGER NOT NULL);", with: "sellers_zip INTEGER NOT NULL, CONSTRAINT \"check_zip_name\" CHECK (sellers_name = 'alice' OR sellers_zip > 0 OR sellers_name = 'carol'));"),
                      operations: [
            .dropMultiColumnConstraint(DropMultiColumnConstraint(table: "tickets", name: "check_zip_name",
                                                                 up: ["sellers_name": "sellers_name", "sellers_zip": "sellers_zip"],
                                                                 down: ["sellers_name": "sellers_name", "sellers_zip": "abs(sellers_zip) + 1"])),
        ], started: { (s: Scratch) throws in
            try s.exec("INSERT INTO tickets (sellers_name, sellers_zip) VALUES ('dave', 0)")
        }, rolledBack: { (s: Scratch) throws in
            #expect(try s.value("SELECT sellers_zip FROM tickets WHERE sellers_name = 'dave'") == "1")
        }, completed: { (s: Scratch) throws in
            try s.exec("INSERT INTO tickets (sellers_name, sellers_zip) VALUES ('erin', -5)")
        }),

        OperationCase(name: "rename_constraints", setup: postsSetup, operations: [
            .renameConstraint(RenameConstraint(table: "posts", from: "title_length", to: "title_length_check")),
            .renameConstraint(RenameConstraint(table: "posts", from: "posts_title_unique", to: "posts_title_key")),
        ], started: { (s: Scratch) throws in
            s.refuses("INSERT INTO posts (title) VALUES ('no')", "title_length")
        }, completed: { (s: Scratch) throws in
            s.refuses("INSERT INTO posts (title) VALUES ('no')", "title_length_check")
            s.refuses("INSERT INTO posts (title) VALUES ('first post')", "UNIQUE")
            #expect(try s.objects(like: "posts_title%") == ["posts_title_key"])
        }),
    ]
}
