/// Name rules shared by manifests and the schema engine.
public enum Identifiers {
    /// `[a-z][a-z0-9-]*`: an app's folder name under `apps/`.
    public static func isValidAppName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.count <= 63 else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`: tables, columns, indexes. teal quotes them in SQL as well.
    public static func isValidSQLIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.count <= 63 else { return false }
        func letter(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_" }
        return letter(first) && name.unicodeScalars.allSatisfy { letter($0) || ("0"..."9").contains($0) }
    }

    /// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`.
    public static func isValidEnvName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    /// Migration file stems: `NNNN_name` with name `[a-z0-9_]+`.
    public static func parseMigrationStem(_ stem: String) -> (number: Int, name: String)? {
        let parts = stem.split(separator: "_", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 4, let number = Int(parts[0]), parts[0].allSatisfy(\.isASCII),
              !parts[1].isEmpty,
              parts[1].unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" })
        else { return nil }
        return (number, String(parts[1]))
    }

    /// Quotes an identifier for SQL (double quotes, embedded quotes doubled).
    public static func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A SQL string literal (single quotes, embedded quotes doubled).
    public static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
