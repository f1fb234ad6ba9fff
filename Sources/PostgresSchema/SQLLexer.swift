/// PostgreSQL's lexical structure, as far as teal needs it: where string constants (`'…'`, `E'…'` with
/// backslash escapes, `U&'…'`, `B'…'`, `X'…'`, `N'…'`, `$tag$…$tag$`), quoted identifiers, comments (line and
/// nested block), numbers, `$1` parameters and semicolons begin and end. An unterminated constant or comment
/// runs to the end of the text; an `E'…'` constant continued on a later line keeps its escapes. `SQLStatements`
/// splits on it, `SQLRedaction` takes the constants out.
enum SQLLexer {
    enum Kind: Equatable {
        case string, quotedIdentifier, comment, number, parameter, word, semicolon, whitespace, other
        /// A `/*` never closed: not a comment to skip (the server refuses the statement), nothing to show either.
        case unclosedComment
    }

    struct Token: Equatable {
        var kind: Kind
        var range: Range<Int>
        /// A string constant whose backslashes are escapes: `E'…'` and its continuations.
        var escapes = false
    }

    static func tokens(_ s: [Unicode.Scalar]) -> [Token] {
        var tokens: [Token] = []
        var i = 0
        func at(_ k: Int) -> Unicode.Scalar? { k < s.count ? s[k] : nil }
        func isDigit(_ c: Unicode.Scalar?) -> Bool { c.map { ("0"..."9").contains($0) } ?? false }
        // As PostgreSQL's scanner: letters, _ and every non-ASCII character start a word (and a dollar quote's tag).
        func isWordStart(_ c: Unicode.Scalar?) -> Bool { c.map { $0 == "_" || $0.value >= 0x80 || $0.properties.isAlphabetic } ?? false }
        func isWordChar(_ c: Unicode.Scalar?) -> Bool { isWordStart(c) || isDigit(c) || c == "$" }
        /// The end of a single-quoted body that starts at `k` (after the opening quote).
        func quotedEnd(_ k: Int, backslash: Bool) -> Int {
            var k = k
            while k < s.count {
                if backslash, s[k] == "\\" { k += 2; continue }
                if s[k] == "'" {
                    if at(k + 1) == "'" { k += 2; continue }
                    return k + 1
                }
                k += 1
            }
            return s.count
        }

        while i < s.count {
            let start = i
            let c = s[i]
            let kind: Kind
            var escapes = false
            if c.properties.isWhitespace {
                while i < s.count, s[i].properties.isWhitespace { i += 1 }
                kind = .whitespace
            } else if c == "-", at(i + 1) == "-" {
                while i < s.count, s[i] != "\n" { i += 1 }
                kind = .comment
            } else if c == "/", at(i + 1) == "*" {
                var depth = 0
                repeat {
                    if s[i] == "/", at(i + 1) == "*" { depth += 1; i += 2 } else if s[i] == "*", at(i + 1) == "/" { depth -= 1; i += 2 } else { i += 1 }
                } while depth > 0 && i < s.count
                kind = depth > 0 ? .unclosedComment : .comment
            } else if c == "\"" {
                i += 1
                while i < s.count {
                    if s[i] == "\"" { if at(i + 1) == "\"" { i += 2; continue }; i += 1; break }
                    i += 1
                }
                kind = .quotedIdentifier
            } else if c == "'" {
                // A constant continued on a later line (`E'a'` newline `'b'`) is one constant: an `E` one's
                // backslash escapes go on in the continuation.
                escapes = continuesEscapeString(tokens, s)
                i = quotedEnd(i + 1, backslash: escapes)
                kind = .string
            } else if isWordStart(c) {
                let upper = String(c).uppercased()
                if at(i + 1) == "'", ["E", "B", "X", "N"].contains(upper) {
                    escapes = upper == "E"
                    i = quotedEnd(i + 2, backslash: escapes)
                    kind = .string
                } else if upper == "U", at(i + 1) == "&", at(i + 2) == "'" {
                    i = quotedEnd(i + 3, backslash: false)
                    kind = .string
                } else {
                    while i < s.count, isWordChar(s[i]) { i += 1 }
                    kind = .word
                }
            } else if c == "$", isDigit(at(i + 1)) {
                i += 1
                while isDigit(at(i)) { i += 1 }
                kind = .parameter
            } else if c == "$" {
                // $tag$ … $tag$, the tag being empty or letters, digits and _ not starting with a digit.
                var j = i + 1
                while j < s.count, s[j] != "$", isWordStart(s[j]) || isDigit(s[j]) { j += 1 }
                if at(j) == "$" {
                    let tag = Array(s[i...j])
                    var k = j + 1
                    while k + tag.count <= s.count, Array(s[k..<(k + tag.count)]) != tag { k += 1 }
                    i = min(s.count, k + tag.count)
                    kind = .string
                } else {
                    i += 1
                    kind = .other
                }
            } else if isDigit(c) || (c == "." && isDigit(at(i + 1))) {
                // 42, 3.5, .5, 1e-10, 0x1F, 1_000
                while i < s.count, isWordChar(s[i]) || s[i] == "." || ((s[i] == "+" || s[i] == "-") && (s[i - 1] == "e" || s[i - 1] == "E")) { i += 1 }
                kind = .number
            } else if c == ";" {
                i += 1
                kind = .semicolon
            } else {
                i += 1
                kind = .other
            }
            tokens.append(Token(kind: kind, range: start..<i, escapes: escapes))
        }
        return tokens
    }

    /// Whether a `'` after `tokens` continues an `E'…'` constant: they end with one (or a continuation of one)
    /// and whitespace holding a newline, as PostgreSQL's scanner joins them.
    private static func continuesEscapeString(_ tokens: [Token], _ s: [Unicode.Scalar]) -> Bool {
        guard tokens.count >= 2, let gap = tokens.last, gap.kind == .whitespace, s[gap.range].contains("\n") else { return false }
        return tokens[tokens.count - 2].escapes
    }
}
