import Foundation
import Testing
import TestSupport

/// `teal schema` on a PostgreSQL database of the test's own cluster: the same commands as on SQLite, the password
/// from a password file, never printed.
@Suite(.serialized) struct SchemaCommandPostgresTests {
    @Test(.timeLimit(.minutes(3)))
    func statusStartRollbackStartCompleteOnPostgres() throws {
        let cluster: PostgresCluster
        do { cluster = try PostgresCluster.get() } catch {
            Issue.record("PostgreSQL is needed for this test: \(error)")
            return
        }
        let database = try cluster.createDatabase("cli")
        let url = cluster.url(database)
        let dir = NSTemporaryDirectory() + "teal-schema-cli-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PostgresFixtures.createUsers.write(toFile: "\(dir)/0001_create_users.yaml", atomically: true, encoding: .utf8)
        try PostgresFixtures.splitName.write(toFile: "\(dir)/0002_split_name.yaml", atomically: true, encoding: .utf8)
        let environment = ["PGPASSFILE": cluster.passFile]
        func schema(_ verb: String) throws -> TealBinary.Result {
            let result = try TealBinary.run(["schema", verb, "--database", url, "--dir", dir], environment: environment, timeout: 60)
            #expect(!(result.stdout + result.stderr).contains(cluster.password), "the password is never printed")
            return result
        }

        var result = try schema("status")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("0001_create_users  pending") && result.stdout.contains("0002_split_name  pending"), "\(result.stdout)")

        result = try schema("start")
        #expect(result.stdout.contains("started 0001_create_users"), "\(result.stdout)\(result.stderr)")
        result = try schema("complete")
        #expect(result.stdout.contains("completed 0001_create_users"), "\(result.stdout)\(result.stderr)")
        try cluster.psql(database, "INSERT INTO public.users (name) VALUES ('Ada Lovelace'), ('Alan Turing')")

        result = try schema("start")
        #expect(result.stdout.contains("started 0002_split_name"), "\(result.stdout)\(result.stderr)")
        result = try schema("status")
        #expect(result.stdout.contains("0001_create_users  completed"), "\(result.stdout)")
        #expect(result.stdout.contains("0002_split_name  started"), "\(result.stdout)")
        // The new shape is served from its version schema, backfilled.
        #expect(try cluster.psql(database, "SELECT first_name FROM users ORDER BY id", options: "-c search_path=public_0002_split_name")
            == "Ada\nAlan")

        result = try schema("rollback")
        #expect(result.stdout.contains("rolled back 0002_split_name"), "\(result.stdout)\(result.stderr)")
        #expect(try cluster.psql(database, "SELECT count(*) FROM pg_namespace WHERE nspname = 'public_0002_split_name'") == "0")
        #expect(try cluster.psql(database, "SELECT name FROM public.users ORDER BY id") == "Ada Lovelace\nAlan Turing")

        result = try schema("start")
        #expect(result.stdout.contains("started 0002_split_name"), "\(result.stdout)\(result.stderr)")
        result = try schema("complete")
        #expect(result.stdout.contains("completed 0002_split_name"), "\(result.stdout)\(result.stderr)")
        #expect(try cluster.psql(database, "SELECT last_name FROM public.users ORDER BY id") == "Lovelace\nTuring")
        result = try schema("start")
        #expect(result.stdout.contains("nothing to start"), "\(result.stdout)\(result.stderr)")

        // What a reopen cut off after bringing the dropped column back leaves: `complete` returns it to completed.
        try cluster.psql(database, """
            UPDATE teal.migrations SET state = 'reopening' WHERE name = '0002_split_name';
            DO $$ BEGIN EXECUTE format('ALTER TABLE public.users RENAME COLUMN %I TO name',
                (SELECT name FROM teal.aside WHERE migration = '0002_split_name' AND kind = 'column')); END $$
            """)
        result = try schema("status")
        #expect(result.stdout.contains("0002_split_name  reopening"), "\(result.stdout)\(result.stderr)")
        result = try schema("start")
        #expect(result.stdout.contains("nothing to start"), "a migration being reopened is not started again: \(result.stdout)\(result.stderr)")
        result = try schema("complete")
        #expect(result.stdout.contains("completed 0002_split_name"), "\(result.stdout)\(result.stderr)")
        #expect(try cluster.psql(database, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'name'") == "0",
                "the old column is aside again")
        result = try schema("status")
        #expect(result.stdout.contains("0002_split_name  completed"), "\(result.stdout)")

        // A file changed after it was applied is refused, by name.
        try (PostgresFixtures.createUsers + "\n# edited\n").write(toFile: "\(dir)/0001_create_users.yaml", atomically: true, encoding: .utf8)
        result = try schema("status")
        #expect(result.status == 1)
        #expect(result.stderr.contains("0001_create_users") && result.stderr.contains("the file changed after it was applied"), "\(result.stderr)")

        // A database that cannot be reached is an error naming it, without the password.
        let unreachable = try TealBinary.run(["schema", "status", "--database", "postgres://teal@127.0.0.1:\(freeLoopbackPort())/none?sslmode=disable"],
                                             environment: environment, timeout: 60)
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("127.0.0.1"), "\(unreachable.stderr)")
    }

    /// `--environment` takes the database and its settings from an app's environment.yaml, as the agent does, and
    /// the migrations from the schema/ folder beside it; `--lock-timeout` on the command line wins over the file's.
    @Test(.timeLimit(.minutes(3)))
    func environmentFileSettingsApplyAndFlagsOverrideThem() throws {
        let cluster: PostgresCluster
        do { cluster = try PostgresCluster.get() } catch {
            Issue.record("PostgreSQL is needed for this test: \(error)")
            return
        }
        let database = try cluster.createDatabase("clienv")
        let root = NSTemporaryDirectory() + "teal-schema-env-\(UUID().uuidString.prefix(8))"
        let app = "\(root)/apps/shop"
        try FileManager.default.createDirectory(atPath: "\(app)/schema", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try """
            database:
              url: \(cluster.url(database))
              lock_timeout: 300ms
            """.write(toFile: "\(app)/environment.yaml", atomically: true, encoding: .utf8)
        try PostgresFixtures.createUsers.write(toFile: "\(app)/schema/0001_create_users.yaml", atomically: true, encoding: .utf8)
        try PostgresFixtures.splitName.write(toFile: "\(app)/schema/0002_split_name.yaml", atomically: true, encoding: .utf8)
        let environment = ["PGPASSFILE": cluster.passFile]
        func schema(_ args: [String]) throws -> TealBinary.Result {
            try TealBinary.run(["schema"] + args + ["--environment", "\(app)/environment.yaml"], environment: environment, timeout: 90)
        }

        var result = try schema(["status"])
        #expect(result.status == 0 && result.stdout.contains("0001_create_users  pending"), "\(result.stdout)\(result.stderr)")
        result = try schema(["start"])
        #expect(result.stdout.contains("started 0001_create_users"), "\(result.stdout)\(result.stderr)")
        result = try schema(["complete"])
        #expect(result.stdout.contains("completed 0001_create_users"), "\(result.stdout)\(result.stderr)")

        // Another session holds the table: the start waits environment.yaml's lock_timeout each time, or the flag's.
        let holder = try cluster.background(database, "BEGIN; SELECT count(*) FROM public.users; SELECT pg_sleep(60); COMMIT;")
        defer { holder.stop() }
        var open = false
        for _ in 0..<100 where !open {
            open = (try? cluster.psql(database, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND state <> 'idle' AND pid <> pg_backend_pid()")) == "1"
            if !open { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(open, "the holding session is running")
        result = try schema(["start"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("each waiting lock_timeout 300ms"), "\(result.stderr)")
        result = try schema(["start", "--lock-timeout", "150ms"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("each waiting lock_timeout 150ms"), "\(result.stderr)")
        holder.stop()
        _ = try? cluster.psql(database, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")

        result = try schema(["start"])
        #expect(result.stdout.contains("started 0002_split_name"), "\(result.stdout)\(result.stderr)")

        // A bad value is refused by flag, before anything runs; a PostgreSQL-only setting on SQLite too.
        result = try schema(["status", "--lock-timeout", "soon"])
        #expect(result.status == 1 && result.stderr.contains("--lock-timeout: 'soon' is not a duration"), "\(result.stderr)")
        let sqlite = try TealBinary.run(["schema", "status", "--database", "sqlite://\(root)/x.db", "--retention", "1d"])
        #expect(sqlite.status == 1 && sqlite.stderr.contains("--retention applies to postgres:// databases only"), "\(sqlite.stderr)")
        // A broken environment.yaml is reported by path and line.
        try "database:\n  url: \(cluster.url(database))\n  lock_timeot: 1s\n".write(toFile: "\(app)/environment.yaml", atomically: true, encoding: .utf8)
        result = try schema(["status"])
        #expect(result.status == 1 && result.stderr.contains("environment.yaml:3"), "\(result.stderr)")
    }
}
