// Grants carried into a version schema
// ====================================
// The views of a version schema are `security_invoker`: PostgreSQL checks the caller's privileges on the base
// table, so a view never gives a role more than the table does. But the views are new objects owned by teal's
// user, so a role that is not the owner also needs privileges on them, and USAGE on their schema. A version
// schema therefore gets USAGE granted to every role holding any privilege on a base table it serves, and each
// view the SELECT, INSERT, UPDATE and DELETE privileges its base table grants, role by role (PUBLIC included).
// Grants to the table's owner and to teal's own user are implicit and not copied. Start grants them with the
// views, in the same transaction; complete brings them in line again (privileges granted or revoked on the base
// tables meanwhile), granting what is missing and revoking what the base table no longer grants.

import Foundation
import Manifest

/// Privileges of roles on the base tables and on a version schema's views, as the catalog reports them.
struct VersionSchemaGrants: Sendable, Hashable {
    /// The privileges a view takes from its base table; others (TRUNCATE, REFERENCES, TRIGGER) do not apply.
    static let viewPrivileges = ["SELECT", "INSERT", "UPDATE", "DELETE"]
    /// The grantee standing for every role.
    static let everyone = "PUBLIC"

    /// View name → its base table (in the app schema).
    var views: [String: String]
    /// Base table → role → privileges.
    var base: [String: [String: Set<String>]]
    /// View → role → privileges it holds now.
    var current: [String: [String: Set<String>]]
    /// Roles holding USAGE on the version schema now.
    var usage: Set<String>

    /// GRANT and REVOKE statements bringing `versionSchema`'s views and USAGE in line with the base tables. Pure.
    func statements(versionSchema: String) -> [String] {
        let q = Identifiers.quote
        func grantee(_ role: String) -> String { role == Self.everyone ? "PUBLIC" : q(role) }
        var out: [String] = []
        var users = Set<String>()
        for view in views.keys.sorted() {
            guard let table = views[view] else { continue }
            let wanted = base[table] ?? [:]
            let held = current[view] ?? [:]
            users.formUnion(wanted.keys)
            let relation = "\(q(versionSchema)).\(q(view))"
            for role in Set(wanted.keys).union(held.keys).sorted() {
                let want = (wanted[role] ?? []).intersection(Self.viewPrivileges)
                let have = held[role] ?? []
                let grant = Self.viewPrivileges.filter { want.contains($0) && !have.contains($0) }
                let revoke = Self.viewPrivileges.filter { have.contains($0) && !want.contains($0) }
                if !grant.isEmpty { out.append("GRANT \(grant.joined(separator: ", ")) ON \(relation) TO \(grantee(role))") }
                if !revoke.isEmpty { out.append("REVOKE \(revoke.joined(separator: ", ")) ON \(relation) FROM \(grantee(role))") }
            }
        }
        for role in users.subtracting(usage).sorted() { out.append("GRANT USAGE ON SCHEMA \(q(versionSchema)) TO \(grantee(role))") }
        for role in usage.subtracting(users).sorted() { out.append("REVOKE USAGE ON SCHEMA \(q(versionSchema)) FROM \(grantee(role))") }
        return out
    }

    /// Reads the views of `versionSchema` with their base tables in `schema`, and the privileges of both, in one
    /// round trip.
    static func read(_ s: PostgresSession, schema: String, versionSchema: String) async throws -> VersionSchemaGrants {
        let answers = try await s.rowsOfEach([
            // A view's base table is the relation its rewrite rule depends on.
            .init(columns: ["v.relname::text", "t.relname::text"], from: """
                FROM pg_class v
                JOIN pg_namespace vn ON vn.oid = v.relnamespace
                JOIN pg_rewrite w ON w.ev_class = v.oid
                JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass
                JOIN pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'p')
                JOIN pg_namespace tn ON tn.oid = t.relnamespace
                WHERE vn.nspname = $1 AND v.relkind = 'v' AND tn.nspname = $2
                """, binds: [versionSchema, schema]),
            Self.privileges(namespace: schema),
            Self.privileges(namespace: versionSchema),
            .init(columns: ["CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE r.rolname::text END"], from: """
                FROM pg_namespace n
                CROSS JOIN LATERAL aclexplode(n.nspacl) a
                LEFT JOIN pg_roles r ON r.oid = a.grantee
                WHERE n.nspname = $1 AND a.privilege_type = 'USAGE'
                  AND a.grantee <> n.nspowner AND a.grantee NOT IN (SELECT oid FROM pg_roles WHERE rolname = current_user)
                """, binds: [versionSchema]),
        ])
        var views: [String: String] = [:]
        for row in answers[0] { if let v = row[0], let t = row[1] { views[v] = t } }
        func byRelation(_ rows: [[String?]]) -> [String: [String: Set<String>]] {
            var out: [String: [String: Set<String>]] = [:]
            for row in rows {
                guard let relation = row[0], let role = row[1], let privilege = row[2] else { continue }
                out[relation, default: [:]][role, default: []].insert(privilege)
            }
            return out
        }
        return VersionSchemaGrants(views: views, base: byRelation(answers[1]), current: byRelation(answers[2]),
                                   usage: Set(answers[3].compactMap { $0[0] }))
    }

    /// Relation → role → privileges granted in `namespace`, leaving out the owner's and teal's own user's.
    private static func privileges(namespace: String) -> PostgresSession.Query {
        .init(columns: ["c.relname::text", "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE r.rolname::text END", "a.privilege_type"], from: """
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL aclexplode(c.relacl) a
            LEFT JOIN pg_roles r ON r.oid = a.grantee
            WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v')
              AND a.grantee <> c.relowner AND a.grantee NOT IN (SELECT oid FROM pg_roles WHERE rolname = current_user)
            """, binds: [namespace])
    }
}
