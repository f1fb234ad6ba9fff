#!/usr/bin/env python3
"""What the expand triggers cost an old-shape INSERT, in CPU instructions (valgrind's callgrind, so the figures do
not depend on the machine's load): compiling the INSERT (sqlite3_prepare_v2 + finalize, which compiles every trigger
program the INSERT can reach) and running it with a cached statement, through SQLite's C API (the system library).
The trigger sets are those of SchemaBenchmark's migration (0002_split_name) on users(id, name, email, first_name,
last_name): the engine's before and after the trigger work of 2026-12-02, and now, with the in-step test in the
update triggers' WHEN (2026-12-03), as `teal schema start` leaves them, and the two floors SchemaBenchmark (c) also
measures. Needs gcc, libsqlite3-dev and valgrind.

    python3 Benchmarks/trigger-cost/compile_cost.py
"""
import os, re, sqlite3, subprocess, tempfile

SETS = {
    "plain (no trigger)": [],
    "engine before (4 programs)": [
        "CREATE TRIGGER \"_teal_0002_split_name_users_ins\" AFTER INSERT ON \"users\" WHEN NEW.\"first_name\" IS NULL OR NEW.\"last_name\" IS NULL OR NEW.\"name\" IS NULL BEGIN UPDATE \"users\" SET \"first_name\" = COALESCE(\"first_name\", (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END)), \"last_name\" = COALESCE(\"last_name\", (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END)), \"name\" = COALESCE(\"name\", (trim(first_name || ' ' || last_name))) WHERE rowid = NEW.rowid; END",
        "CREATE TRIGGER \"_teal_0002_split_name_users_nn2\" AFTER UPDATE OF \"name\" ON \"users\" WHEN NEW.\"name\" IS NULL BEGIN UPDATE \"users\" SET \"name\" = (trim(first_name || ' ' || last_name)) WHERE rowid = NEW.rowid AND (trim(first_name || ' ' || last_name)) IS NOT NULL; END",
        "CREATE TRIGGER \"_teal_0002_split_name_users_upd\" AFTER UPDATE OF \"name\" ON \"users\" WHEN ((NEW.\"name\" IS NOT OLD.\"name\") AND NEW.\"first_name\" IS OLD.\"first_name\") OR ((NEW.\"name\" IS NOT OLD.\"name\") AND NEW.\"last_name\" IS OLD.\"last_name\") BEGIN UPDATE \"users\" SET \"first_name\" = CASE WHEN (NEW.\"name\" IS NOT OLD.\"name\") AND NEW.\"first_name\" IS OLD.\"first_name\" THEN (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END) ELSE \"first_name\" END, \"last_name\" = CASE WHEN (NEW.\"name\" IS NOT OLD.\"name\") AND NEW.\"last_name\" IS OLD.\"last_name\" THEN (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END) ELSE \"last_name\" END WHERE rowid = NEW.rowid AND NOT (\"name\" IS (trim(first_name || ' ' || last_name))); END",
        "CREATE TRIGGER \"_teal_0002_split_name_users_upd_new\" AFTER UPDATE OF \"first_name\", \"last_name\" ON \"users\" WHEN ((NEW.\"first_name\" IS NOT OLD.\"first_name\" OR NEW.\"last_name\" IS NOT OLD.\"last_name\") AND NEW.\"name\" IS OLD.\"name\") BEGIN UPDATE \"users\" SET \"name\" = (trim(first_name || ' ' || last_name)) WHERE rowid = NEW.rowid AND NOT (\"first_name\" IS (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END) AND \"last_name\" IS (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END)); END"
    ],
    "engine after 2026-12-02 (3 programs)": [
        "CREATE TRIGGER \"_teal_0002_split_name_users_ins\" AFTER INSERT ON \"users\"\nBEGIN UPDATE \"users\" SET \"first_name\" = COALESCE(\"first_name\", (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END)), \"last_name\" = COALESCE(\"last_name\", (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END)) WHERE rowid = NEW.rowid; END",
        "CREATE TRIGGER \"_teal_0002_split_name_users_upd\" AFTER UPDATE OF \"name\" ON \"users\" WHEN (NEW.\"name\" IS NOT OLD.\"name\") AND (NEW.\"first_name\" IS OLD.\"first_name\" OR NEW.\"last_name\" IS OLD.\"last_name\")\nBEGIN UPDATE \"users\" SET \"first_name\" = CASE WHEN NEW.\"first_name\" IS OLD.\"first_name\" THEN (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END) ELSE \"first_name\" END, \"last_name\" = CASE WHEN NEW.\"last_name\" IS OLD.\"last_name\" THEN (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END) ELSE \"last_name\" END WHERE rowid = NEW.rowid AND (NOT (\"name\" IS (trim(first_name || ' ' || last_name)))); END",
        "CREATE TRIGGER \"_teal_0002_split_name_users_upd_new\" AFTER UPDATE OF \"first_name\", \"last_name\" ON \"users\" WHEN ((NEW.\"first_name\" IS NOT OLD.\"first_name\" OR NEW.\"last_name\" IS NOT OLD.\"last_name\") AND (NEW.\"name\" IS OLD.\"name\")) OR NEW.\"name\" IS NULL\nBEGIN UPDATE \"users\" SET \"name\" = (trim(first_name || ' ' || last_name)) WHERE rowid = NEW.rowid AND (NOT (\"first_name\" IS (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END) AND \"last_name\" IS (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END)) OR \"name\" IS NULL); END"
    ],
    "engine now, in-step test in the WHEN (3 programs)": [
        "CREATE TRIGGER \"_teal_0002_split_name_users_ins\" AFTER INSERT ON \"users\" BEGIN UPDATE \"users\" SET \"first_name\" = COALESCE(\"first_name\", (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END)), \"last_name\" = COALESCE(\"last_name\", (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END)) WHERE rowid = NEW.rowid; END",
        "CREATE TRIGGER \"_teal_0002_split_name_users_upd\" AFTER UPDATE OF \"name\" ON \"users\" WHEN ((NEW.\"name\" IS NOT OLD.\"name\") AND (NEW.\"first_name\" IS OLD.\"first_name\" OR NEW.\"last_name\" IS OLD.\"last_name\")) AND NOT (NEW.\"name\" IS (trim(NEW.\"first_name\" || ' ' || NEW.\"last_name\"))) BEGIN UPDATE \"users\" SET \"first_name\" = CASE WHEN NEW.\"first_name\" IS OLD.\"first_name\" THEN (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END) ELSE \"first_name\" END, \"last_name\" = CASE WHEN NEW.\"last_name\" IS OLD.\"last_name\" THEN (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END) ELSE \"last_name\" END WHERE rowid = NEW.rowid AND (NOT (\"name\" IS (trim(first_name || ' ' || last_name)))); END",
        "CREATE TRIGGER \"_teal_0002_split_name_users_upd_new\" AFTER UPDATE OF \"first_name\", \"last_name\" ON \"users\" WHEN (((NEW.\"first_name\" IS NOT OLD.\"first_name\" OR NEW.\"last_name\" IS NOT OLD.\"last_name\") AND (NEW.\"name\" IS OLD.\"name\")) AND NOT (NEW.\"first_name\" IS (CASE WHEN instr(NEW.\"name\", ' ') > 0 THEN substr(NEW.\"name\", 1, instr(NEW.\"name\", ' ') - 1) ELSE NEW.\"name\" END) AND NEW.\"last_name\" IS (CASE WHEN instr(NEW.\"name\", ' ') > 0 THEN substr(NEW.\"name\", instr(NEW.\"name\", ' ') + 1) ELSE '' END))) OR NEW.\"name\" IS NULL BEGIN UPDATE \"users\" SET \"name\" = (trim(first_name || ' ' || last_name)) WHERE rowid = NEW.rowid AND (NOT (\"first_name\" IS (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END) AND \"last_name\" IS (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END)) OR \"name\" IS NULL); END"
    ],
    "floor: minimal two-way set": [
        "CREATE TRIGGER floor_ins AFTER INSERT ON users WHEN NEW.first_name IS NULL BEGIN UPDATE users SET first_name = (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END), last_name = (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END) WHERE rowid = NEW.rowid; END",
        "CREATE TRIGGER floor_new AFTER UPDATE OF first_name, last_name ON users WHEN NEW.first_name IS NOT OLD.first_name OR NEW.last_name IS NOT OLD.last_name BEGIN UPDATE users SET name = trim(first_name || ' ' || last_name) WHERE rowid = NEW.rowid AND name IS NOT trim(first_name || ' ' || last_name); END",
        "CREATE TRIGGER floor_old AFTER UPDATE OF name ON users WHEN NEW.name IS NOT OLD.name BEGIN UPDATE users SET first_name = (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END), last_name = (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END) WHERE rowid = NEW.rowid; END"
    ],
    "floor: one-way fill only": [
        "CREATE TRIGGER floor_ins AFTER INSERT ON users WHEN NEW.first_name IS NULL BEGIN UPDATE users SET first_name = (CASE WHEN instr(name, ' ') > 0 THEN substr(name, 1, instr(name, ' ') - 1) ELSE name END), last_name = (CASE WHEN instr(name, ' ') > 0 THEN substr(name, instr(name, ' ') + 1) ELSE '' END) WHERE rowid = NEW.rowid; END"
    ]
}

C = r"""
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {   /* N DB MODE: MODE 0 = N prepares, 1 = N inserts with one cached statement */
    sqlite3 *db; sqlite3_stmt *st = 0; int n = atoi(argv[1]), mode = atoi(argv[3]); char name[64];
    sqlite3_open(argv[2], &db); sqlite3_exec(db, "PRAGMA synchronous = OFF", 0, 0, 0);
    const char *sql = "INSERT INTO users (name, email) VALUES (?, ?)";
    for (int i = 0; i < n; i++) {
        if (mode == 0 || !st) { if (st) sqlite3_finalize(st); if (sqlite3_prepare_v2(db, sql, -1, &st, 0)) { fprintf(stderr, "%s\n", sqlite3_errmsg(db)); return 1; } }
        if (mode == 0) continue;
        snprintf(name, sizeof name, "First%d Last%d", i, i);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT); sqlite3_bind_text(st, 2, "e@example.com", -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) { fprintf(stderr, "%s\n", sqlite3_errmsg(db)); return 1; }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st); sqlite3_close(db); return 0;
}
"""

def database(path, triggers):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix): os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, first_name TEXT, last_name TEXT)")
    db.execute("INSERT INTO users (name, email) VALUES ('Ada Lovelace', 'a@example.com'), ('Alan Turing', 't@example.com')")
    for sql in triggers: db.execute(sql)
    opcodes = len(db.execute("EXPLAIN INSERT INTO users (name, email) VALUES ('a b', 'c')").fetchall())
    db.close()
    return opcodes

def instructions(exe, path, n, mode):
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", exe, str(n), path, str(mode)],
                         capture_output=True, text=True).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))

def main():
    work = tempfile.mkdtemp(prefix="trigger-cost-")
    exe = os.path.join(work, "insert")
    with open(exe + ".c", "w") as f: f.write(C)
    subprocess.run(["gcc", "-O2", "-o", exe, exe + ".c", "-lsqlite3"], check=True)
    print(f"SQLite {sqlite3.sqlite_version}; thousands of instructions per INSERT (difference of 60 and 10 runs, /50)")
    print("| trigger set | VDBE opcodes (with trigger programs) | compile | over plain | run, cached statement | over plain |")
    print("|---|---|---|---|---|---|")
    base = None
    for label, triggers in SETS.items():
        path = os.path.join(work, "t.db")
        ops = database(path, triggers)
        compile_ = (instructions(exe, path, 60, 0) - instructions(exe, path, 10, 0)) / 50 / 1000
        database(path, triggers)
        run = (instructions(exe, path, 60, 1) - instructions(exe, path, 10, 1)) / 50 / 1000
        base = base or (compile_, run)
        print(f"| {label} | {ops} | {compile_:.1f}k | +{compile_ - base[0]:.1f}k | {run:.1f}k | +{run - base[1]:.1f}k |")

if __name__ == "__main__":
    main()
