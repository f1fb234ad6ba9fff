import Manifest
import Schema

// A column that changes gets a twin (`_teal_new_<column>`) the new shape sees under the column's name; complete
// puts the old column aside and renames the twin into its place. What covered the old column must cover the twin
// by then, under the same names: every index on it (plain, unique, a unique constraint's, the primary key's) is
// copied onto the twin `CONCURRENTLY` at start, under a helper name, and complete swaps the copies in; foreign
// keys of other tables that reference the column are declared again against it (NOT VALID, then validated) and
// the old ones dropped, before the old primary key or unique constraint goes.

extension PlanBuilder {
    /// Plans the carrying of `column`'s indexes, constraints and incoming foreign keys onto `twin` (which complete
    /// renames to `finalName`). Returns the statements of complete's phase 2 on `table`, to run once the twin is
    /// NOT NULL where it must be.
    mutating func carryIndexes(table: String, column: String, twin: String, finalName: String,
                               typeChange: (from: String, to: String)? = nil, except dropped: String? = nil) throws -> [String] {
        let aside = helper("dropped", column)
        var swaps: [String] = []
        let covering = catalog.indexes(on: table, covering: column)
        if let x = covering.first(where: { $0.constraintType == "x" }) {
            throw PlanError("exclusion constraint \(x.constraint ?? x.name) covers column \(table).\(column) and cannot be carried onto its new "
                + "definition online; drop it first (drop_constraint), then change the column, then declare it again")
        }
        let incoming = catalog.foreignKeys(referencing: table, column)
        if let change = typeChange, !incoming.isEmpty, !Self.compatibleKeyTypes(change.from, change.to) {
            let fk = incoming[0]
            throw PlanError("column \(table).\(column) is referenced by foreign key \(fk.table).\(fk.name), whose columns would no longer match "
                + "its type (\(change.from) to \(change.to)); change the referencing columns' type first, or drop the foreign key (drop_constraint), "
                + "change the column, and declare it again (create_constraint)")
        }
        for index in covering {
            guard let tail = Catalog.indexTail(index.definition) else { continue }
            let copy = helper("ix", index.name)
            let unique = index.definition.hasPrefix("CREATE UNIQUE ")
            expandConcurrently(table, index: copy, "CREATE \(unique ? "UNIQUE " : "")INDEX CONCURRENTLY IF NOT EXISTS \(q(copy)) ON \(qt(table)) USING "
                + SQLText.replacingColumn(in: tail, column, with: twin))
            undo(table, ["DROP INDEX CONCURRENTLY IF EXISTS \(q(schema)).\(q(copy))"], concurrently: true)
            let copyExists = "to_regclass(\(lit("\(q(schema)).\(q(copy))"))) IS NOT NULL"
            switch (index.constraintType, index.constraint) {
            case ("p"?, let name?):
                swaps.append(when(copyExists, """
                    ALTER TABLE \(qt(table)) DROP CONSTRAINT IF EXISTS \(q(name)); \
                    ALTER TABLE \(qt(table)) ADD CONSTRAINT \(q(name)) PRIMARY KEY USING INDEX \(q(copy));
                    """))
            case ("u"?, let name?):
                swaps.append(when(copyExists, """
                    ALTER TABLE \(qt(table)) DROP CONSTRAINT IF EXISTS \(q(name)); \
                    ALTER TABLE \(qt(table)) ADD CONSTRAINT \(q(name)) UNIQUE USING INDEX \(q(copy));
                    """))
            default:
                swaps.append(when(copyExists, """
                    DROP INDEX IF EXISTS \(q(schema)).\(q(index.name)); ALTER INDEX \(q(schema)).\(q(copy)) RENAME TO \(q(index.name));
                    """))
            }
        }
        // An identity column's twin draws from the same sequence meanwhile (new-shape inserts get their key from it);
        // complete makes the column under its final name the identity, continuing the sequence, and the one put
        // aside a plain column.
        if let identity = physical(table, column)?.identity {
            expand(table, ["""
                DO $teal$ BEGIN IF \(columnExists(table, twin)) THEN \
                EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT nextval(%L::regclass)', \(lit(qt(table))), \(lit(twin)), \
                pg_get_serial_sequence(\(lit(qt(table))), \(lit(column)))); END IF; END $teal$
                """])
            swaps.append("""
                DO $teal$ DECLARE s text; n bigint; BEGIN \
                IF \(columnExists(table, aside)) AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(\(lit(qt(table)))) \
                AND attname = \(lit(aside)) AND attidentity <> '') THEN \
                ALTER TABLE \(qt(table)) ALTER COLUMN \(q(finalName)) DROP DEFAULT; \
                s := pg_get_serial_sequence(\(lit(qt(table))), \(lit(aside))); n := nextval(s); \
                ALTER TABLE \(qt(table)) ALTER COLUMN \(q(aside)) DROP IDENTITY; \
                EXECUTE format('ALTER TABLE %s ALTER COLUMN %I ADD GENERATED \(identity == "a" ? "ALWAYS" : "BY DEFAULT") AS IDENTITY (START WITH %s)', \
                \(lit(qt(table))), \(lit(finalName)), n); END IF; END $teal$
                """)
            refuseReopen("complete moved the identity of \(table).\(column) onto its new definition, and moving it back is not supported")
        }
        // Check constraints naming the column, and its own foreign keys, hold for the twin too (`carryConstraint`).
        for check in catalog.checks(on: table, naming: column) where check.name != dropped {
            try carryConstraint(table: table, name: check.name, definition: check.definition, column: column, twin: twin,
                                finalName: finalName, into: &swaps) { SQLText.replacingColumn(in: $0, column, with: $1) }
        }
        for fk in catalog.foreignKeys(from: table, naming: column) where fk.name != dropped {
            try carryConstraint(table: table, name: fk.name, definition: fk.definition, column: column, twin: twin,
                                finalName: finalName, into: &swaps) { definition, name in
                // Only the key's own columns: what it references stays as it is.
                guard let r = definition.range(of: " REFERENCES ") else { return definition }
                return SQLText.replacingColumn(in: String(definition[..<r.lowerBound]), column, with: name) + String(definition[r.lowerBound...])
            }
        }
        // The old column may have been NOT NULL (a primary key's always is): rows written after complete leave it empty.
        swaps.append(when(columnExists(table, aside), "ALTER TABLE \(qt(table)) ALTER COLUMN \(q(aside)) DROP NOT NULL;"))
        // A serial's sequence goes with the column that owns it: the twin (which shares its default) takes it over.
        swaps.append("""
            DO $teal$ DECLARE s text; BEGIN IF \(columnExists(table, aside)) THEN \
            s := pg_get_serial_sequence(\(lit(qt(table))), \(lit(aside))); \
            IF s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(\(lit(qt(table)))) \
            AND attname = \(lit(aside)) AND attidentity <> '') THEN \
            EXECUTE format('ALTER SEQUENCE %s OWNED BY %s.%I', s, \(lit(qt(table))), \(lit(finalName))); END IF; END IF; END $teal$
            """)
        // Foreign keys into the column: declared again against the twin (now under the column's name, backed by the
        // copy of the unique index), validated, and put in place of the old ones, before the old key goes (phase 2,
        // ahead of the caller's step on `table`).
        for fk in incoming {
            let temporary = helper("fk", fk.name)
            var definition = fk.definition
            if finalName != column, let r = definition.range(of: "REFERENCES ") {
                definition = String(definition[..<r.upperBound]) + SQLText.replacingColumn(in: String(definition[r.upperBound...]), column, with: finalName)
            }
            definition = definition.replacingOccurrences(of: " NOT VALID", with: "")
            let stillOld = """
                EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = ANY (c.confkey) \
                WHERE c.conrelid = to_regclass(\(lit(qt(fk.table)))) AND c.conname = \(lit(fk.name)) AND a.attname = \(lit(aside)))
                """
            self.contract(fk.table, phase: 2, [
                when("\(stillOld) AND NOT \(constraintExists(fk.table, temporary))",
                     "ALTER TABLE \(qt(fk.table)) ADD CONSTRAINT \(q(temporary)) \(definition) NOT VALID;"),
            ])
            self.contract(fk.table, phase: 2, [
                when(constraintExists(fk.table, temporary), """
                    ALTER TABLE \(qt(fk.table)) VALIDATE CONSTRAINT \(q(temporary)); \
                    ALTER TABLE \(qt(fk.table)) DROP CONSTRAINT IF EXISTS \(q(fk.name)); \
                    ALTER TABLE \(qt(fk.table)) RENAME CONSTRAINT \(q(temporary)) TO \(q(fk.name));
                    """),
            ])
            undo(fk.table, ["ALTER TABLE IF EXISTS \(qt(fk.table)) DROP CONSTRAINT IF EXISTS \(q(temporary))"])
        }
        return swaps
    }

    /// Reopen of a twin: complete put `column` aside and renamed `twin` into the column's place (settle's renames,
    /// undone there); the old column comes back (`putAsideColumn`) and a serial's sequence goes back to it. Refused
    /// when complete moved indexes, keys or foreign keys onto the twin: they would have to move back too.
    mutating func reopenTwin(table: String, column: String, twin: String) {
        let covering = catalog.indexes(on: table, covering: column).map { $0.constraint ?? $0.name }
        let incoming = catalog.foreignKeys(referencing: table, column).map { "\($0.table).\($0.name)" }
        if !covering.isEmpty || !incoming.isEmpty {
            refuseReopen("complete moved \((covering + incoming).joined(separator: ", ")) from \(table).\(column) onto its new definition, "
                + "and moving them back is not supported")
        }
        reopen(table, phase: 2, ["""
            DO $teal$ DECLARE s text; BEGIN IF \(columnExists(table, column)) AND \(columnExists(table, twin)) THEN \
            s := pg_get_serial_sequence(\(lit(qt(table))), \(lit(twin))); \
            IF s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(\(lit(qt(table)))) \
            AND attname = \(lit(twin)) AND attidentity <> '') THEN \
            EXECUTE format('ALTER SEQUENCE %s OWNED BY %s.%I', s, \(lit(qt(table))), \(lit(column))); END IF; END IF; END $teal$
            """])
    }

    /// Carries the constraint `name` of `column` onto its twin. A validated one: a copy `NOT VALID` on the twin at
    /// start (new writes are checked, in both shapes), validated at complete and put in place of the original, which
    /// goes with the old column. One never validated: a copy `NOT VALID` on the final column at complete (existing
    /// rows were never checked, so the backfill must not be either). Reopen gives the copy back its helper name and
    /// declares the original again on the old column, `NOT VALID`, then validates it when it was validated before. A constraint naming two columns this migration changes is
    /// refused: one copy cannot follow both.
    mutating func carryConstraint(table: String, name: String, definition: String, column: String, twin: String, finalName: String,
                                  into swaps: inout [String], onColumn: (String, String) -> String) throws {
        guard !carriedConstraints.contains("\(table).\(name)") else {
            throw PlanError("constraint \(name) of \(table) names two columns this migration changes, and cannot follow both onto their "
                + "new definitions; drop it first (drop_constraint), change the columns, then declare it again")
        }
        carriedConstraints.insert("\(table).\(name)")
        let copy = helper(definition.hasPrefix("FOREIGN KEY") ? "fk" : "ck", name)
        let validated = !definition.hasSuffix(" NOT VALID")
        let original = validated ? definition : String(definition.dropLast(" NOT VALID".count))
        if validated {
            expand(table, [addConstraint(table, copy, onColumn(original, twin) + " NOT VALID")])
            swaps.append(when(constraintExists(table, copy), """
                ALTER TABLE \(qt(table)) VALIDATE CONSTRAINT \(q(copy)); \
                ALTER TABLE \(qt(table)) DROP CONSTRAINT IF EXISTS \(q(name)); \
                ALTER TABLE \(qt(table)) RENAME CONSTRAINT \(q(copy)) TO \(q(name));
                """))
        } else {
            swaps.append(when("NOT \(constraintExists(table, copy)) AND \(columnExists(table, finalName))",
                              "ALTER TABLE \(qt(table)) ADD CONSTRAINT \(q(copy)) \(onColumn(original, finalName)) NOT VALID;"))
            swaps.append(when(constraintExists(table, copy), """
                ALTER TABLE \(qt(table)) DROP CONSTRAINT IF EXISTS \(q(name)); \
                ALTER TABLE \(qt(table)) RENAME CONSTRAINT \(q(copy)) TO \(q(name));
                """))
        }
        reopen(table, phase: 3, [when("\(constraintExists(table, name)) AND NOT \(constraintExists(table, copy))", """
            ALTER TABLE \(qt(table)) RENAME CONSTRAINT \(q(name)) TO \(q(copy)); \
            ALTER TABLE \(qt(table)) ADD CONSTRAINT \(q(name)) \(original) NOT VALID;
            """)])
        if validated { validateAfterReopen(table, name) }
    }

    /// Key types a foreign key may keep pointing across: the same type, or two of PostgreSQL's integer types.
    static func compatibleKeyTypes(_ a: String, _ b: String) -> Bool {
        let integers: Set<String> = ["smallint", "integer", "bigint", "int2", "int4", "int8", "int", "serial", "bigserial", "smallserial"]
        let x = a.lowercased(), y = b.lowercased()
        return x == y || (integers.contains(x) && integers.contains(y))
    }
}
