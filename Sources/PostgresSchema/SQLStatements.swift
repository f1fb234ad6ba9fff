import Foundation
/// Splits SQL text into statements at top-level semicolons, as psql does: quotes ('…', E'…' with backslash
/// escapes, "…"), dollar quotes ($$…$$, $tag$…$tag$), line and nested block comments are skipped over.
/// The extended protocol takes one statement per call, and pgroll's `sql` operations often hold several.
enum SQLStatements {
    static func split(_ sql: String) -> [String] {
        let chars = Array(sql)
        var statements: [String] = []
        var start = 0
        var i = 0
        func peek(_ offset: Int) -> Character? { i + offset < chars.count ? chars[i + offset] : nil }
        while i < chars.count {
            let c = chars[i]
            switch c {
            case "'":
                let escapes = i > 0 && (chars[i - 1] == "E" || chars[i - 1] == "e") && (i < 2 || !(chars[i - 2].isLetter || chars[i - 2].isNumber || chars[i - 2] == "_"))
                i += 1
                while i < chars.count {
                    if escapes && chars[i] == "\\" { i += 2; continue }
                    if chars[i] == "'" {
                        if peek(1) == "'" { i += 2; continue }
                        break
                    }
                    i += 1
                }
                i += 1
            case "\"":
                i += 1
                while i < chars.count {
                    if chars[i] == "\"" { if peek(1) == "\"" { i += 2; continue }; break }
                    i += 1
                }
                i += 1
            case "-" where peek(1) == "-":
                while i < chars.count && chars[i] != "\n" { i += 1 }
            case "/" where peek(1) == "*":
                var depth = 0
                repeat {
                    if chars[i] == "/" && peek(1) == "*" { depth += 1; i += 2 }
                    else if chars[i] == "*" && peek(1) == "/" { depth -= 1; i += 2 }
                    else { i += 1 }
                } while depth > 0 && i < chars.count
            case "$":
                // A dollar quote's tag: $ [letters, digits, _] $, not after an identifier character ($1, a$b).
                let after = i > 0 ? chars[i - 1] : " "
                var j = i + 1
                while j < chars.count && (chars[j].isLetter || chars[j] == "_" || (j > i + 1 && chars[j].isNumber)) { j += 1 }
                if j < chars.count, chars[j] == "$", !(after.isLetter || after.isNumber || after == "_") {
                    let tag = Array(chars[i...j])
                    var k = j + 1
                    while k + tag.count <= chars.count && Array(chars[k..<k + tag.count]) != tag { k += 1 }
                    i = min(chars.count, k + tag.count)
                } else {
                    i += 1
                }
            case ";":
                statements.append(String(chars[start..<i]))
                i += 1
                start = i
            default:
                i += 1
            }
        }
        if start < chars.count { statements.append(String(chars[start...])) }
        return statements.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !isEmpty($0) }
    }

    /// True for text that is only whitespace and comments.
    private static func isEmpty(_ s: String) -> Bool {
        var rest = Substring(s)
        while true {
            rest = rest.drop { $0.isWhitespace }
            if rest.hasPrefix("--") { rest = rest.drop { $0 != "\n" }; continue }
            if rest.hasPrefix("/*"), let end = rest.range(of: "*/") { rest = rest[end.upperBound...]; continue }
            return rest.isEmpty
        }
    }
}
