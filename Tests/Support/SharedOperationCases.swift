import Foundation

// One table of operation cases that runs on SQLite (Tests/SchemaTests) and on PostgreSQL
// (Tests/PostgresSchemaTests): the same old shape, the same migration in pgroll's vocabulary, and the same
// reads and writes through each shape, in every phase. Each engine's harness adds what it checks for every
// operation (the schema as before after rollback, nothing of teal's left after complete, ...). What the two
// engines cannot both promise (SQLite's one namespace shows both shapes' tables to both releases; PostgreSQL
// enforces a new unique constraint from start) is not asked here; each engine's own cases cover it.

/// Which release's view of the database a statement runs in.
public enum ReleaseShape: String, Sendable {
    /// The release written for the migration before (`0001_setup`).
    case old
    /// The release written for the migration under test.
    case new
}

/// One check in one phase.
public enum ShapeCheck: Sendable, CustomStringConvertible {
    /// The statement must succeed.
    case exec(ReleaseShape, String)
    /// The statement must fail; with a fragment, the error must contain it.
    case refuses(ReleaseShape, String, containing: String? = nil)
    /// The query's rows, each as its columns joined by `|`, NULL as `NULL`.
    case rows(ReleaseShape, String, [String])
    /// An index of this name exists, or not.
    case index(String, exists: Bool)

    public var description: String {
        switch self {
        case .exec(let shape, let sql): "\(shape): \(sql)"
        case .refuses(let shape, let sql, let fragment): "\(shape) refuses: \(sql)\(fragment.map { " (\($0))" } ?? "")"
        case .rows(let shape, let sql, let rows): "\(shape): \(sql) -> \(rows)"
        case .index(let name, let exists): "index \(name) \(exists ? "exists" : "is gone")"
        }
    }
}

/// What an engine's harness provides for the checks.
public protocol ShapeAccess {
    func exec(_ sql: String, in shape: ReleaseShape) throws
    func rows(_ sql: String, in shape: ReleaseShape) throws -> [String]
    func indexExists(_ name: String) throws -> Bool
}

public struct SharedOperationCase: Sendable, CustomStringConvertible {
    public var name: String
    /// Statements building the old shape and its rows, in SQL both databases take.
    public var setup: [String]
    /// The migration's YAML (pgroll's vocabulary).
    public var migration: String
    /// The operation kinds the case exercises (the harnesses check that every kind has a case).
    public var kinds: [String]
    public var started: [ShapeCheck] = []
    public var rolledBack: [ShapeCheck] = []
    public var restarted: [ShapeCheck] = []
    public var completed: [ShapeCheck] = []
    /// Set when SQLite refuses the migration at validate: a fragment of the message.
    public var refusedOnSQLite: String?

    public var description: String { name }

    /// Runs `checks` through `access`; returns what failed, in words.
    public static func run(_ checks: [ShapeCheck], on access: some ShapeAccess, phase: String, case name: String) -> [String] {
        var failures: [String] = []
        for check in checks {
            let place = "\(name), \(phase): \(check)"
            switch check {
            case .exec(let shape, let sql):
                do { try access.exec(sql, in: shape) } catch { failures.append("\(place): \(error)") }
            case .refuses(let shape, let sql, let fragment):
                do {
                    try access.exec(sql, in: shape)
                    failures.append("\(place): it succeeded")
                } catch {
                    if let fragment, !"\(error)".contains(fragment) { failures.append("\(place): the error says \(error)") }
                }
            case .rows(let shape, let sql, let expected):
                do {
                    let got = try access.rows(sql, in: shape)
                    if got != expected { failures.append("\(place): got \(got)") }
                } catch { failures.append("\(place): \(error)") }
            case .index(let index, let exists):
                do {
                    if try access.indexExists(index) != exists { failures.append("\(place): it \(exists ? "is missing" : "is there")") }
                } catch { failures.append("\(place): \(error)") }
            }
        }
        return failures
    }
}

private let users = [
    "CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL, age integer)",
    "INSERT INTO users (id, name, age) VALUES (1, 'Ada Lovelace', 36), (2, 'Alan Turing', 41), (3, 'Cher', NULL)",
]

public let sharedOperationCases: [SharedOperationCase] = [
    SharedOperationCase(
        name: "create_table with a key, a default, a check and a reference", setup: users,
        migration: """
            operations:
              - create_table:
                  name: orders
                  columns:
                    - {name: id, type: integer, pk: true}
                    - {name: user_id, type: integer, references: {name: orders_user_fk, table: users, column: id}}
                    - {name: total, type: integer, default: "0", check: {name: orders_total_ck, constraint: "total >= 0"}}
            """,
        kinds: ["create_table"],
        started: [
            .exec(.new, "INSERT INTO orders (id, user_id, total) VALUES (1, 1, 5)"),
            .exec(.new, "INSERT INTO orders (id, user_id) VALUES (2, 2)"),
            .refuses(.new, "INSERT INTO orders (id, user_id, total) VALUES (3, 1, -1)", containing: "orders_total_ck"),
            .rows(.new, "SELECT id, total FROM orders ORDER BY id", ["1|5", "2|0"]),
            .rows(.old, "SELECT count(*) FROM users", ["3"]),
        ],
        rolledBack: [.rows(.old, "SELECT count(*) FROM users", ["3"])],
        restarted: [.rows(.new, "SELECT id, total FROM orders ORDER BY id", ["1|5", "2|0"])],
        completed: [
            .rows(.new, "SELECT count(*) FROM orders", ["2"]),
            .refuses(.new, "INSERT INTO orders (id, user_id, total) VALUES (4, 1, -1)", containing: "orders_total_ck"),
        ]),
    SharedOperationCase(
        name: "add_column NOT NULL from up, unique, with a check", setup: users,
        migration: """
            operations:
              - add_column:
                  table: users
                  column: {name: code, type: text, unique: true, check: {name: code_len, constraint: "length(code) > 1"}}
                  up: "'u' || id"
            """,
        kinds: ["add_column"],
        started: [
            .rows(.new, "SELECT code FROM users ORDER BY id", ["u1", "u2", "u3"]),
            .exec(.old, "INSERT INTO users (id, name, age) VALUES (10, 'Grace Hopper', 85)"),
            .rows(.new, "SELECT code FROM users WHERE id = 10", ["u10"]),
            .exec(.new, "INSERT INTO users (id, name, age, code) VALUES (11, 'Edsger Dijkstra', 72, 'ed')"),
            .rows(.old, "SELECT name FROM users WHERE id = 11", ["Edsger Dijkstra"]),
        ],
        rolledBack: [.rows(.old, "SELECT count(*) FROM users", ["5"])],
        restarted: [.rows(.new, "SELECT code FROM users ORDER BY id", ["u1", "u2", "u3", "u10", "u11"])],
        completed: [
            .refuses(.new, "INSERT INTO users (id, name, age) VALUES (12, 'No Code', 1)"),
            .refuses(.new, "INSERT INTO users (id, name, age, code) VALUES (12, 'Same Code', 1, 'u1')"),
            .refuses(.new, "INSERT INTO users (id, name, age, code) VALUES (12, 'Short Code', 1, 'x')", containing: "code_len"),
            .exec(.new, "INSERT INTO users (id, name, age, code) VALUES (12, 'Barbara Liskov', 86, 'bl')"),
        ]),
    SharedOperationCase(
        name: "alter_column to NOT NULL, up filling the gaps", setup: users,
        migration: """
            operations:
              - alter_column: {table: users, column: age, nullable: false, up: "coalesce(age, 0)", down: "age"}
            """,
        kinds: ["alter_column"],
        // (On SQLite both releases read the old column until complete, so the new shape's values show from then.)
        started: [
            .exec(.old, "INSERT INTO users (id, name, age) VALUES (10, 'No Age', NULL)"),
            .rows(.old, "SELECT coalesce(age, -1) FROM users WHERE id = 10", ["-1"]),
            .exec(.new, "UPDATE users SET age = 37 WHERE id = 1"),
            .rows(.old, "SELECT age FROM users WHERE id = 1", ["37"]),
        ],
        rolledBack: [
            .exec(.old, "INSERT INTO users (id, name, age) VALUES (11, 'Still Nullable', NULL)"),
            .rows(.old, "SELECT age FROM users WHERE id = 1", ["37"]),
        ],
        completed: [
            .refuses(.new, "INSERT INTO users (id, name, age) VALUES (12, 'x', NULL)"),
            .rows(.new, "SELECT age FROM users WHERE id IN (1, 3, 10, 11) ORDER BY id", ["37", "0", "0", "0"]),
        ]),
    SharedOperationCase(
        name: "rename_column, written in both shapes", setup: users,
        migration: """
            operations:
              - rename_column: {table: users, from: age, to: years}
            """,
        kinds: ["rename_column"],
        started: [
            .exec(.old, "INSERT INTO users (id, name, age) VALUES (10, 'Grace Hopper', 85)"),
            .rows(.new, "SELECT years FROM users WHERE id = 10", ["85"]),
            .exec(.new, "UPDATE users SET years = 37 WHERE id = 1"),
            .rows(.old, "SELECT age FROM users WHERE id = 1", ["37"]),
            .exec(.new, "INSERT INTO users (id, name, years) VALUES (11, 'Edsger Dijkstra', 72)"),
            .rows(.old, "SELECT age FROM users WHERE id = 11", ["72"]),
        ],
        rolledBack: [.rows(.old, "SELECT age FROM users WHERE id IN (1, 11) ORDER BY id", ["37", "72"])],
        completed: [
            .rows(.new, "SELECT years FROM users WHERE id IN (1, 10, 11) ORDER BY id", ["37", "85", "72"]),
            .refuses(.new, "SELECT age FROM users"),
        ]),
    SharedOperationCase(
        name: "drop_column, down filling the old shape", setup: users,
        migration: """
            operations:
              - drop_column: {table: users, column: name, down: "'user ' || id"}
            """,
        kinds: ["drop_column"],
        started: [
            .exec(.new, "INSERT INTO users (id, age) VALUES (10, 5)"),
            .rows(.old, "SELECT name FROM users WHERE id = 10", ["user 10"]),
            .exec(.old, "INSERT INTO users (id, name, age) VALUES (11, 'Grace Hopper', 85)"),
            .rows(.new, "SELECT age FROM users WHERE id = 11", ["85"]),
        ],
        rolledBack: [.rows(.old, "SELECT name FROM users WHERE id IN (1, 10) ORDER BY id", ["Ada Lovelace", "user 10"])],
        completed: [
            .refuses(.new, "SELECT name FROM users"),
            .rows(.new, "SELECT count(*) FROM users", ["5"]),
        ]),
    SharedOperationCase(
        name: "create_index and drop_index", setup: users + ["CREATE INDEX users_age_idx ON users (age)"],
        migration: """
            operations:
              - create_index: {name: users_name_idx, table: users, columns: [name]}
              - drop_index: {name: users_age_idx}
            """,
        kinds: ["create_index", "drop_index"],
        started: [.index("users_name_idx", exists: true), .rows(.new, "SELECT id FROM users WHERE name = 'Cher'", ["3"])],
        rolledBack: [.index("users_name_idx", exists: false), .index("users_age_idx", exists: true)],
        completed: [.index("users_name_idx", exists: true), .index("users_age_idx", exists: false)]),
    SharedOperationCase(
        name: "create_constraint unique and check, rename_constraint",
        setup: users + ["CREATE TABLE notes (id integer PRIMARY KEY, user_id integer, body text, CONSTRAINT body_len CHECK (length(body) > 0))",
                        "INSERT INTO notes (id, user_id, body) VALUES (1, 1, 'first')"],
        migration: """
            operations:
              - create_constraint: {table: users, name: users_name_key, type: unique, columns: [name]}
              - create_constraint: {table: notes, name: notes_user_fk, type: foreign_key, columns: [user_id], references: {table: users, columns: [id]}}
              - rename_constraint: {table: notes, from: body_len, to: body_not_empty}
            """,
        kinds: ["create_constraint", "rename_constraint"],
        started: [.exec(.new, "INSERT INTO notes (id, user_id, body) VALUES (2, 2, 'second')")],
        rolledBack: [.refuses(.old, "INSERT INTO notes (id, user_id, body) VALUES (3, 1, '')", containing: "body_len")],
        completed: [
            .refuses(.new, "INSERT INTO users (id, name, age) VALUES (10, 'Cher', 77)"),
            .refuses(.new, "INSERT INTO notes (id, user_id, body) VALUES (3, 1, '')", containing: "body_not_empty"),
            .rows(.new, "SELECT count(*) FROM notes", ["2"]),
        ]),
    SharedOperationCase(
        name: "drop_constraint, down conforming the old shape",
        setup: users + ["CREATE TABLE notes (id integer PRIMARY KEY, body text, CONSTRAINT body_len CHECK (length(body) > 2))",
                        "INSERT INTO notes (id, body) VALUES (1, 'first')"],
        migration: """
            operations:
              - drop_constraint: {table: notes, name: body_len, up: "body", down: "CASE WHEN length(body) > 2 THEN body ELSE body || '...' END"}
            """,
        kinds: ["drop_constraint"],
        // While both run, the new shape writes what the constraint refuses; `down` conforms it for the old shape (on
        // PostgreSQL at once, into the old shape's own column, which keeps the constraint; on SQLite, whose shapes
        // share the column, at rollback).
        started: [
            .exec(.new, "INSERT INTO notes (id, body) VALUES (2, 'okay')"),
            .rows(.old, "SELECT body FROM notes WHERE id = 2", ["okay"]),
            .exec(.new, "INSERT INTO notes (id, body) VALUES (5, 'no')"),
            .rows(.new, "SELECT body FROM notes WHERE id = 5", ["no"]),
        ],
        rolledBack: [
            .rows(.old, "SELECT body FROM notes ORDER BY id", ["first", "okay", "no..."]),
            .refuses(.old, "INSERT INTO notes (id, body) VALUES (3, 'no')", containing: "body_len"),
        ],
        completed: [.exec(.new, "INSERT INTO notes (id, body) VALUES (4, 'a')"), .rows(.new, "SELECT count(*) FROM notes", ["4"])]),
    SharedOperationCase(
        name: "drop_multicolumn_constraint",
        setup: users + ["CREATE TABLE seats (id integer PRIMARY KEY, row_no integer, seat integer, CONSTRAINT seat_pos CHECK (row_no > 0 AND seat > 0))",
                        "INSERT INTO seats (id, row_no, seat) VALUES (1, 1, 1)"],
        migration: """
            operations:
              - drop_multicolumn_constraint:
                  table: seats
                  name: seat_pos
                  up: {row_no: row_no, seat: seat}
                  down: {row_no: "CASE WHEN row_no > 0 THEN row_no ELSE 1 END", seat: "CASE WHEN seat > 0 THEN seat ELSE 1 END"}
            """,
        kinds: ["drop_multicolumn_constraint"],
        started: [
            .exec(.new, "INSERT INTO seats (id, row_no, seat) VALUES (2, 3, 5)"),
            .rows(.old, "SELECT row_no, seat FROM seats WHERE id = 2", ["3|5"]),
        ],
        rolledBack: [
            .rows(.old, "SELECT row_no, seat FROM seats ORDER BY id", ["1|1", "3|5"]),
            .refuses(.old, "INSERT INTO seats (id, row_no, seat) VALUES (3, 0, 0)", containing: "seat_pos"),
        ],
        completed: [.exec(.new, "INSERT INTO seats (id, row_no, seat) VALUES (4, -1, -1)"), .rows(.new, "SELECT count(*) FROM seats", ["3"])]),
    SharedOperationCase(
        name: "drop_table keeps its rows until complete",
        setup: users + ["CREATE TABLE notes (id integer PRIMARY KEY, body text)", "INSERT INTO notes (id, body) VALUES (1, 'first')"],
        migration: """
            operations:
              - drop_table: {name: notes}
            """,
        kinds: ["drop_table"],
        started: [.exec(.old, "INSERT INTO notes (id, body) VALUES (2, 'second')")],
        rolledBack: [.rows(.old, "SELECT body FROM notes ORDER BY id", ["first", "second"])],
        completed: [.refuses(.new, "SELECT * FROM notes"), .rows(.new, "SELECT count(*) FROM users", ["3"])]),
    SharedOperationCase(
        name: "raw sql with down, and set_replica_identity", setup: users,
        migration: """
            operations:
              - sql: {up: "CREATE TABLE audit_log (id integer PRIMARY KEY, line text)", down: "DROP TABLE audit_log"}
              - set_replica_identity: {table: users, identity: {type: full}}
            """,
        kinds: ["sql", "set_replica_identity"],
        started: [.rows(.old, "SELECT count(*) FROM users", ["3"])],
        rolledBack: [.refuses(.old, "SELECT * FROM audit_log")],
        completed: [.exec(.new, "INSERT INTO audit_log (id, line) VALUES (1, 'hello')"), .rows(.new, "SELECT line FROM audit_log", ["hello"])]),
    SharedOperationCase(
        name: "rename_table", setup: users,
        migration: """
            operations:
              - rename_table: {from: users, to: people}
            """,
        kinds: ["rename_table"],
        started: [
            .exec(.new, "INSERT INTO people (id, name, age) VALUES (10, 'Grace Hopper', 85)"),
            .rows(.old, "SELECT name FROM users WHERE id = 10", ["Grace Hopper"]),
        ],
        rolledBack: [.rows(.old, "SELECT count(*) FROM users", ["4"])],
        completed: [.rows(.new, "SELECT count(*) FROM people", ["4"])],
        refusedOnSQLite: "needs PostgreSQL"),
]
