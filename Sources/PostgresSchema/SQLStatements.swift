import Foundation
/// Splits SQL text into statements at top-level semicolons, as psql does: semicolons inside quotes, dollar
/// quotes and comments (`SQLLexer`) do not count. The extended protocol takes one statement per call, and
/// pgroll's `sql` operations often hold several.
enum SQLStatements {
    static func split(_ sql: String) -> [String] {
        let s = Array(sql.unicodeScalars)
        var statements: [String] = []
        var current: [SQLLexer.Token] = []
        func flush() {
            // A statement of only whitespace and comments is no statement (an unclosed `/*` is sent, for the
            // server to refuse).
            let meaningful = current.filter { $0.kind != .whitespace && $0.kind != .comment }
            if let first = current.first, !meaningful.isEmpty {
                let text = String(String.UnicodeScalarView(s[first.range.lowerBound..<current.last!.range.upperBound]))
                statements.append(text.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            current = []
        }
        for token in SQLLexer.tokens(s) {
            if token.kind == .semicolon { flush() } else { current.append(token) }
        }
        flush()
        return statements
    }
}
