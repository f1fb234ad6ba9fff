/// Another session's SQL text with its constants taken out, so an error can show what a blocking
/// transaction is doing without showing the data it carries (a password being set, a token, a card number).
///
/// String constants of every spelling (`SQLLexer`) become `'?'`, numbers become `?`, comments are dropped
/// and runs of whitespace read as one space; keywords, identifiers (quoted ones too), operators and `$1`
/// parameters are kept, so the statement keeps its shape. A constant cut off by
/// `track_activity_query_size` is redacted to the end of the text, and so is everything after a plain `'…'`
/// holding a backslash (which may escape its quote under `standard_conforming_strings = off`). The result is cut to
/// `limit` characters.
enum SQLRedaction {
    static func redact(_ sql: String, limit: Int = 200) -> String {
        let s = Array(sql.unicodeScalars)
        var out = String.UnicodeScalarView()
        var cut = false
        for token in SQLLexer.tokens(s) where !cut {
            switch token.kind {
            case .string:
                out.append(contentsOf: "'?'".unicodeScalars)
                // With standard_conforming_strings off, \' inside '…' escapes the quote, so where this constant
                // ends is not known: nothing after it is shown.
                if s[token.range.lowerBound] == "'", !token.escapes, s[token.range].contains("\\") { out.append(contentsOf: " …".unicodeScalars); cut = true }
            case .unclosedComment: cut = true
            case .number: out.append("?")
            case .comment, .whitespace: if let last = out.last, last != " " { out.append(" ") }
            default: out.append(contentsOf: s[token.range])
            }
        }
        if out.last == " " { out.removeLast() }
        let text = String(out)
        return text.count > limit ? String(text.prefix(limit)) + "…" : text
    }
}
