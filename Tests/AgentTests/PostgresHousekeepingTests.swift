import Foundation
import Manifest
import Testing
import TestSupport
import Drivers
import PostgresSchema

/// The PostgreSQL backend's housekeeping, as a pass calls it: the retention window from environment.yaml, the
/// purge and the grants, on a real database.
@Suite(.serialized) struct PostgresHousekeepingTests {
    func migration(_ name: String, _ yaml: String) throws -> Migration {
        try MigrationParser.parse(Array(yaml.utf8), fileName: "\(name).yaml", path: "apps/shop/schema/\(name).yaml", checksum: "c-\(name)").get()
    }

    @Test func environmentYamlsRetentionReachesTheEngine() throws {
        let catalog = SchemaBackendCatalog(dataDir: NSTemporaryDirectory() + "teal-housekeeping-\(UUID().uuidString.prefix(8))")
        let backend = try catalog.backend(for: .postgres("postgres://shop@db.internal/shop"),
                                          options: DatabaseOptions(retention: .seconds(90), lockTimeout: .milliseconds(200), statementTimeout: .seconds(5)))
        let options = (backend as? PostgresSchemaBackend)?.engine.options
        #expect(options?.retention == 90)
        #expect(options?.lockTimeout == 0.2 && options?.statementTimeout == 5, "lock_timeout and statement_timeout reach the engine")
        let fallback = try catalog.backend(for: .postgres("postgres://shop@db.internal/shop"))
        #expect((fallback as? PostgresSchemaBackend)?.engine.options.retention == PostgresSchemaOptions.defaultRetention)
        #expect((fallback as? PostgresSchemaBackend)?.engine.options.lockTimeout == 1)
    }

    @Test func maintainPurgesWhatIsPastTheWindowAndBringsGrantsInLine() async throws {
        guard case .success(let cluster) = PostgresCluster.shared else {
            Issue.record("PostgreSQL is needed for this test")
            return
        }
        let database = try cluster.createDatabase()
        let backend = try PostgresSchemaBackend(url: cluster.url(database), options: PostgresSchemaOptions(retention: 3600),
                                                environment: ["PGPASSFILE": cluster.passFile])
        try await backend.start(try migration("0001_users", """
            operations:
              - create_table:
                  name: users
                  columns:
                    - {name: id, type: integer, pk: true}
                    - {name: nick, type: text, nullable: true}
            """), progress: { _, _ in }, shouldStop: { false })
        try await backend.complete("0001_users")
        try await backend.start(try migration("0002_no_nick", "operations:\n  - drop_column: {table: users, column: nick}\n"), progress: { _, _ in }, shouldStop: { false })
        try await backend.complete("0002_no_nick")
        let role = "app_\(UUID().uuidString.prefix(8).lowercased())"
        try cluster.psql(database, "CREATE ROLE \(role); GRANT SELECT ON public.users TO \(role)")
        try cluster.psql(database, "UPDATE teal.aside SET put_aside_at = now() - interval '2 hours'")

        await backend.maintain()
        #expect(try cluster.psql(database, "SELECT count(*) FROM teal.aside") == "0")
        #expect(try cluster.psql(database, "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attnum > 0 AND NOT attisdropped") == "id")
        #expect(try cluster.psql(database, "SELECT has_table_privilege('\(role)', 'public_0002_no_nick.users', 'SELECT')::text") == "true")
        try? cluster.psql(database, "DROP OWNED BY \(role); DROP ROLE \(role)")
    }
}
