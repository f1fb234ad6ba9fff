import Manifest

/// Small lexical helpers over SQL text: enough to find column references in an expression and to edit
/// one column's constraints inside a `CREATE TABLE` statement.
public enum SQLText {
    struct Token {
        enum Kind { case word, quotedIdentifier, string, group, symbol }
        var kind: Kind
        var text: String

        /// The identifier this token names, unquoted, if it is one.
        var identifier: String? {
            switch kind {
            case .word: return text
            case .quotedIdentifier:
                let inner = text.dropFirst().dropLast()
                return text.first == "\"" ? inner.replacingOccurrences(of: "\"\"", with: "\"") : String(inner)
            default: return nil
            }
        }

        func isKeyword(_ keyword: String) -> Bool { kind == .word && text.uppercased() == keyword }
    }

    /// Splits SQL into tokens; a parenthesised group is one token, comments are dropped.
    static func tokens(_ sql: String) -> [Token] {
        let chars = Array(sql)
        var result: [Token] = []
        var i = 0
        func scanQuoted(_ close: Character, from start: Int) -> Int {
            var j = start + 1
            while j < chars.count {
                if chars[j] == close {
                    if close != "]", j + 1 < chars.count, chars[j + 1] == close { j += 2; continue }
                    return j + 1
                }
                j += 1
            }
            return chars.count
        }
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            if c == "-", i + 1 < chars.count, chars[i + 1] == "-" {
                while i < chars.count, chars[i] != "\n" { i += 1 }
                continue
            }
            if c == "/", i + 1 < chars.count, chars[i + 1] == "*" {
                i += 2
                while i + 1 < chars.count, !(chars[i] == "*" && chars[i + 1] == "/") { i += 1 }
                i += 2
                continue
            }
            switch c {
            case "'":
                let end = scanQuoted("'", from: i)
                result.append(Token(kind: .string, text: String(chars[i..<end]))); i = end
            case "\"", "`":
                let end = scanQuoted(c, from: i)
                result.append(Token(kind: .quotedIdentifier, text: String(chars[i..<end]))); i = end
            case "[":
                let end = scanQuoted("]", from: i)
                result.append(Token(kind: .quotedIdentifier, text: String(chars[i..<end]))); i = end
            case "(":
                var depth = 0
                var j = i
                while j < chars.count {
                    let d = chars[j]
                    if d == "'" || d == "\"" || d == "`" { j = scanQuoted(d, from: j); continue }
                    if d == "(" { depth += 1 } else if d == ")" { depth -= 1; if depth == 0 { j += 1; break } }
                    j += 1
                }
                result.append(Token(kind: .group, text: String(chars[i..<min(j, chars.count)]))); i = j
            default:
                if c.isLetter || c.isNumber || c == "_" || c == "$" {
                    var j = i
                    while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" || chars[j] == "$" || chars[j] == "." { j += 1 }
                    result.append(Token(kind: .word, text: String(chars[i..<j]))); i = j
                } else {
                    result.append(Token(kind: .symbol, text: String(c))); i += 1
                }
            }
        }
        return result
    }

    /// The names among `columns` that `expression` mentions (case-insensitive), in `columns` order.
    static func referencedColumns(in expression: String, among columns: [String]) -> [String] {
        var mentioned = Set<String>()
        func collect(_ sql: String) {
            for token in tokens(sql) {
                if token.kind == .group { collect(String(token.text.dropFirst().dropLast())) }
                if let id = token.identifier {
                    for part in id.split(separator: ".") { mentioned.insert(part.lowercased()) }
                }
            }
        }
        collect(expression)
        return columns.filter { mentioned.contains($0.lowercased()) }
    }

    /// True for a constant SQLite accepts as an `ADD COLUMN ... DEFAULT`: a number, a string, NULL, TRUE, FALSE.
    static func isLiteral(_ expression: String) -> Bool {
        var toks = tokens(expression)
        if toks.first?.kind == .symbol, toks.first?.text == "-" || toks.first?.text == "+" { toks.removeFirst() }
        guard toks.count == 1, let t = toks.first else { return false }
        switch t.kind {
        case .string: return true
        case .word:
            return t.text.first?.isNumber == true || ["NULL", "TRUE", "FALSE"].contains(t.text.uppercased())
        default: return false
        }
    }

    /// The body items of a `CREATE TABLE name (...)` statement, and the text around them.
    private static func tableBody(_ sql: String) -> (head: Substring, items: [String], tail: Substring)? {
        guard let open = firstTopLevelParen(sql) else { return nil }
        let toks = tokens(String(sql[open...]))
        guard let group = toks.first, group.kind == .group else { return nil }
        let bodyEnd = sql.index(open, offsetBy: group.text.count)
        let inner = String(group.text.dropFirst().dropLast())
        return (sql[..<open], splitTopLevel(inner), sql[bodyEnd...])
    }

    private static func firstTopLevelParen(_ sql: String) -> String.Index? {
        var i = sql.startIndex
        var quote: Character?
        while i < sql.endIndex {
            let c = sql[i]
            if let q = quote { if c == q { quote = nil } } else if c == "\"" || c == "'" || c == "`" { quote = c } else if c == "[" { quote = "]" } else if c == "(" { return i }
            i = sql.index(after: i)
        }
        return nil
    }

    private static func splitTopLevel(_ text: String) -> [String] {
        var items: [String] = []
        var current = ""
        var depth = 0
        var quote: Character?
        for c in text {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "'" || c == "\"" || c == "`" {
                quote = c
            } else if c == "[" {
                quote = "]"
            } else if c == "(" {
                depth += 1
            } else if c == ")" {
                depth -= 1
            } else if c == ",", depth == 0 {
                items.append(current); current = ""; continue
            }
            current.append(c)
        }
        items.append(current)
        return items
    }

    private static let tableConstraintKeywords: Set<String> = ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"]

    /// Rewrites one column's definition in a `CREATE TABLE` statement: NOT NULL and DEFAULT are replaced by the
    /// given ones (nil: none), and `check` (if any) is appended. Other clauses are kept. Nil if the column is not there.
    static func settingColumnConstraints(in sql: String, column: String, notNull: Bool, default defaultSQL: String?,
                                         addingCheck check: String? = nil) -> String? {
        guard let (head, items, tail) = tableBody(sql) else { return nil }
        var found = false
        let rewritten = items.map { item -> String in
            let toks = tokens(item)
            guard let first = toks.first, let name = first.identifier,
                  !(first.kind == .word && tableConstraintKeywords.contains(name.uppercased())),
                  name.lowercased() == column.lowercased() else { return item }
            found = true
            var kept: [Token] = []
            var i = 0
            while i < toks.count {
                var j = i
                if toks[j].isKeyword("CONSTRAINT"), j + 2 < toks.count,
                   toks[j + 2].isKeyword("NOT") || toks[j + 2].isKeyword("DEFAULT") { j += 2 }
                if toks[j].isKeyword("NOT"), j + 1 < toks.count, toks[j + 1].isKeyword("NULL") {
                    j += 2
                    if j + 2 < toks.count, toks[j].isKeyword("ON"), toks[j + 1].isKeyword("CONFLICT") { j += 3 }
                    i = j; continue
                }
                if toks[j].isKeyword("DEFAULT"), j + 1 < toks.count {
                    j += 1
                    if toks[j].kind == .symbol, toks[j].text == "-" || toks[j].text == "+", j + 1 < toks.count { j += 1 }
                    i = j + 1; continue
                }
                kept.append(toks[i]); i += 1
            }
            var text = " " + kept.map(\.text).joined(separator: " ")
            if notNull { text += " NOT NULL" }
            if let defaultSQL { text += " DEFAULT (\(defaultSQL))" }
            if let check { text += " CHECK (\(check))" }
            return text
        }
        guard found else { return nil }
        return String(head) + "(" + rewritten.joined(separator: ",") + ")" + String(tail)
    }

    /// `expression` with every bare mention of column `from` (a word or quoted identifier, not qualified, not a
    /// function name) replaced by `to`, quoted. Strings and comments are left as they are.
    public static func replacingColumn(in expression: String, _ from: String, with to: String) -> String {
        let target = from.lowercased()
        return rewritingBareColumns(in: expression) { name, _ in name.lowercased() == target ? Identifiers.quote(to) : nil }
    }

    /// `expression` with every bare mention of one of `columns` prefixed by `row` (`NEW`, `OLD`): the expression
    /// as a trigger's WHEN evaluates it on that row. Nil when it holds a subquery, whose bare names may be another
    /// table's. An unquoted word that is an expression keyword stays the keyword, as SQLite reads it, even when a
    /// column has its name.
    static func qualifyingColumns(in expression: String, _ columns: [String], with row: String) -> String? {
        guard !mentionsWord(expression, "SELECT") else { return nil }
        let names = Set(columns.map { $0.lowercased() })
        return rewritingBareColumns(in: expression) { name, quoted in
            guard names.contains(name.lowercased()), quoted || !expressionKeywords.contains(name.uppercased()) else { return nil }
            return "\(row).\(Identifiers.quote(name))"
        }
    }

    private static let expressionKeywords: Set<String> = [
        "AND", "OR", "NOT", "IS", "NULL", "NOTNULL", "ISNULL", "IN", "LIKE", "GLOB", "MATCH", "REGEXP", "ESCAPE", "BETWEEN",
        "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "AS", "COLLATE", "EXISTS", "DISTINCT", "FROM", "TRUE", "FALSE",
        "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "RAISE", "FILTER", "OVER",
    ]

    /// `expression` with each bare column mention (a word or quoted identifier, not qualified, not a function name)
    /// that `replace` maps to SQL (given the name and whether it was quoted) replaced by it. Strings and comments are left as they are.
    private static func rewritingBareColumns(in expression: String, _ replace: (_ name: String, _ quoted: Bool) -> String?) -> String {
        let chars = Array(expression)
        var out = ""
        var i = 0
        func nextNonSpace(_ j: Int) -> Character? {
            var k = j
            while k < chars.count, chars[k].isWhitespace { k += 1 }
            return k < chars.count ? chars[k] : nil
        }
        while i < chars.count {
            let c = chars[i]
            if c == "'" || c == "\"" || c == "`" || c == "[" {
                let close: Character = c == "[" ? "]" : c
                var j = i + 1
                while j < chars.count {
                    if chars[j] == close {
                        if close != "]", j + 1 < chars.count, chars[j + 1] == close { j += 2; continue }
                        j += 1; break
                    }
                    j += 1
                }
                let text = String(chars[i..<min(j, chars.count)])
                let prevDot = i > 0 && chars[i - 1] == "."
                let nextDot = j < chars.count && chars[j] == "."
                if c != "'", !prevDot, !nextDot, let name = Token(kind: .quotedIdentifier, text: text).identifier, let sql = replace(name, true) {
                    out += sql
                } else {
                    out += text
                }
                i = j
                continue
            }
            if c == "-", i + 1 < chars.count, chars[i + 1] == "-" {
                while i < chars.count, chars[i] != "\n" { out.append(chars[i]); i += 1 }
                continue
            }
            if c.isLetter || c == "_" {
                var j = i
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" || chars[j] == "$" { j += 1 }
                let word = String(chars[i..<j])
                let prevDot = i > 0 && chars[i - 1] == "."
                let nextDot = j < chars.count && chars[j] == "."
                let isCall = nextNonSpace(j) == "("
                out += (!prevDot && !nextDot && !isCall ? replace(word, false) : nil) ?? word
                i = j
                continue
            }
            if c.isNumber {
                var j = i
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" || chars[j] == "." { j += 1 }
                out += String(chars[i..<j]); i = j
                continue
            }
            out.append(c); i += 1
        }
        return out
    }

    /// The top-level items of a `CREATE TABLE` body (columns and table constraints), as written.
    static func tableItems(_ sql: String) -> [String]? { tableBody(sql)?.items }

    /// The name of a `CONSTRAINT name ...` table item, nil for columns and unnamed constraints.
    static func constraintName(ofItem item: String) -> String? {
        let toks = tokens(item)
        guard toks.count >= 2, toks[0].isKeyword("CONSTRAINT") else { return nil }
        return toks[1].identifier
    }

    /// True when `item` is a table constraint rather than a column definition.
    static func isTableConstraint(_ item: String) -> Bool {
        guard let first = tokens(item).first, first.kind == .word else { return false }
        return tableConstraintKeywords.contains(first.text.uppercased())
    }

    /// The `CREATE TABLE` statement with its body items replaced, keeping the text around them.
    static func replacingTableItems(in sql: String, _ transform: ([String]) -> [String]) -> String? {
        guard let (head, items, tail) = tableBody(sql) else { return nil }
        return String(head) + "(" + transform(items).joined(separator: ",") + ")" + String(tail)
    }

    /// The names among `columns` that a table constraint item mentions.
    static func columnsMentioned(byItem item: String, among columns: [String]) -> [String] {
        referencedColumns(in: item, among: columns)
    }

    /// True when `sql` contains `word` as a keyword or name (quoted or not) outside strings (case-insensitive).
    static func mentionsWord(_ sql: String, _ word: String) -> Bool {
        func scan(_ toks: [Token]) -> Bool {
            toks.contains { t in
                if t.kind == .group { return scan(tokens(String(t.text.dropFirst().dropLast()))) }
                return t.identifier.map { $0.split(separator: ".").contains { $0.lowercased() == word.lowercased() } } ?? false
            }
        }
        return scan(tokens(sql))
    }
}
