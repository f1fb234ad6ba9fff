"""The example shop: a tiny HTTP service over the users table.

Release 1.0.0 (schema 0001_create_users) stores a user's full `name`; release 2.0.0
(schema 0002_split_name) stores `first_name` and `last_name`. teal tells the process which
shape it was written for through TEAL_SCHEMA, and where the database is through DATABASE_URL
(PostgreSQL: its URL selects this release's shape; the password comes from PGPASSFILE) or
DATABASE_PATH (SQLite).
"""
import json
import os
import sqlite3
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8000"))
DB = os.environ.get("DATABASE_PATH", "shop.db")
URL = os.environ.get("DATABASE_URL", "")
POSTGRES = URL.startswith("postgres")
SPLIT = os.environ.get("TEAL_SCHEMA", "0001_create_users") >= "0002_split_name"
IDENTITY = {k.lower(): os.environ.get(k, "") for k in ("TEAL_APP", "TEAL_COLOR", "TEAL_RELEASE", "TEAL_SCHEMA", "TEAL_COMMIT")}


def connect():
    if POSTGRES:
        import psycopg
        return psycopg.connect(URL, connect_timeout=5)
    conn = sqlite3.connect(DB, timeout=5)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def sql(text):
    """The statement in the driver's parameter style (psycopg: %s, sqlite3: ?)."""
    return text.replace("?", "%s") if POSTGRES else text


DB_ERRORS = (sqlite3.Error,)
if POSTGRES:
    import psycopg
    DB_ERRORS = (sqlite3.Error, psycopg.Error)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            with connect() as conn:
                conn.execute("SELECT 1 FROM users LIMIT 1").fetchall()
            return self.reply(200, {"ok": True})
        if self.path == "/users":
            with connect() as conn:
                if SPLIT:
                    rows = conn.execute("SELECT id, first_name, last_name FROM users ORDER BY id").fetchall()
                    users = [{"id": i, "first_name": f, "last_name": l} for i, f, l in rows]
                else:
                    rows = conn.execute("SELECT id, name FROM users ORDER BY id").fetchall()
                    users = [{"id": i, "name": n} for i, n in rows]
            return self.reply(200, {"served_by": IDENTITY, "users": users})
        if self.path == "/":
            return self.reply(200, IDENTITY)
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/users":
            return self.reply(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length", "0"))
        try:
            user = json.loads(self.rfile.read(length) or b"{}")
            with connect() as conn:
                if SPLIT:
                    cur = conn.execute(sql("INSERT INTO users (first_name, last_name) VALUES (?, ?) RETURNING id"),
                                       (user["first_name"], user.get("last_name", "")))
                else:
                    cur = conn.execute(sql("INSERT INTO users (name) VALUES (?) RETURNING id"), (user["name"],))
                new_id = cur.fetchone()[0]
            self.reply(201, {"id": new_id})
        except (KeyError, ValueError) + DB_ERRORS as error:
            self.reply(400, {"error": str(error)})

    def log_message(self, fmt, *args):
        if os.environ.get("LOG_LEVEL") == "debug":
            sys.stderr.write(fmt % args + "\n")


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
