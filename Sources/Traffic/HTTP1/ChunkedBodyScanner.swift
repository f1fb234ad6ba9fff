/// Follows a chunked body (RFC 9112 §7.1) as its bytes pass through, to find where it ends and to check it,
/// without copying it. Chunk data is skipped in bulk; only sizes, extensions and trailers are read byte by byte.
/// Pure: feed it bytes in any split, it keeps its place between calls.
///
/// Strict to the grammar, so that no parser behind the router can read a different length out of the same
/// bytes: a size line is hex digits, then optional extensions (`;` name [`=` token or quoted string], with
/// optional whitespace around `;` and `=`), then CRLF; a size that does not fit is refused; each trailer line is
/// checked like a header field line.
struct ChunkedBodyScanner: Sendable {
    private enum State: Sendable {
        /// Hex digits of the size.
        case size
        /// Whitespace after the size or an extension: `;`, CR or more whitespace follow.
        case afterSize
        /// After `;`: whitespace, then an extension name.
        case extensionNameStart
        case extensionName
        /// Whitespace after an extension name: `=`, `;` or CR follow.
        case afterExtensionName
        /// After `=`: whitespace, then a token or a quoted string.
        case extensionValueStart
        case extensionToken
        case extensionQuoted
        case extensionQuotedEscape
        case sizeLF
        case data, dataCR, dataLF
        /// At the start of a trailer line, or the empty line that ends the body.
        case lineStart
        case trailer, trailerLF, lastLF, done
    }

    /// Longest chunk-size line (with extensions) and largest trailer section accepted.
    static let maxLineBytes = 4096
    static let maxTrailerBytes = 64 * 1024
    /// Sizes from here on are refused (16 hex digits fit in an Int, but no body is that long).
    private static let maxChunkSize = 1 << 48

    private var state = State.size
    private var remaining = 0
    private var digits = 0
    private var lineBytes = 0
    private var trailerBytes = 0
    /// The trailer line being read (CRLF excluded), checked when it ends.
    private var trailerLine: [UInt8] = []

    var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Reads `bytes` up to the end of the body and returns how many of them belong to it (all of them
    /// unless the body ends inside). `data` gets the ranges that are chunk data.
    mutating func scan(_ bytes: UnsafeRawBufferPointer, data: (Range<Int>) -> Void = { _ in }) throws(HeadError) -> Int {
        var index = 0
        while index < bytes.count {
            switch state {
            case .data:
                let count = min(remaining, bytes.count - index)
                data(index..<(index + count))
                remaining -= count
                index += count
                if remaining == 0 { state = .dataCR }
                continue
            case .done:
                return index
            default:
                break
            }
            let byte = bytes[index]
            index += 1
            switch state {
            case .size:
                lineBytes += 1
                if let value = Self.hexValue(byte) {
                    guard remaining < Self.maxChunkSize >> 4 else { throw Self.malformed("chunk size too large") }
                    remaining = remaining << 4 | value
                    digits += 1
                } else if digits == 0 {
                    throw Self.malformed("malformed chunk size")
                } else {
                    try sizeLineDelimiter(byte, else: "malformed chunk size")
                }
            case .afterSize:
                lineBytes += 1
                try sizeLineDelimiter(byte, else: "malformed chunk size line")
            case .extensionNameStart:
                lineBytes += 1
                if Self.isWhitespace(byte) { break }
                guard HeadParser.isTokenByte(byte) else { throw Self.malformed("malformed chunk extension") }
                state = .extensionName
            case .extensionName:
                lineBytes += 1
                if HeadParser.isTokenByte(byte) { break }
                if byte == UInt8(ascii: "=") {
                    state = .extensionValueStart
                } else if Self.isWhitespace(byte) {
                    state = .afterExtensionName
                } else {
                    try sizeLineDelimiter(byte, else: "malformed chunk extension")
                }
            case .afterExtensionName:
                lineBytes += 1
                if byte == UInt8(ascii: "=") {
                    state = .extensionValueStart
                } else {
                    try sizeLineDelimiter(byte, else: "malformed chunk extension")
                }
            case .extensionValueStart:
                lineBytes += 1
                if Self.isWhitespace(byte) { break }
                if byte == UInt8(ascii: "\"") {
                    state = .extensionQuoted
                } else if HeadParser.isTokenByte(byte) {
                    state = .extensionToken
                } else {
                    throw Self.malformed("malformed chunk extension value")
                }
            case .extensionToken:
                lineBytes += 1
                if HeadParser.isTokenByte(byte) { break }
                try sizeLineDelimiter(byte, else: "malformed chunk extension value")
            case .extensionQuoted:
                lineBytes += 1
                if byte == UInt8(ascii: "\"") {
                    state = .afterSize
                } else if byte == UInt8(ascii: "\\") {
                    state = .extensionQuotedEscape
                } else if !Self.isQuotedText(byte) {
                    throw Self.malformed("malformed chunk extension value")
                }
            case .extensionQuotedEscape:
                lineBytes += 1
                guard Self.isQuotedText(byte) || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else {
                    throw Self.malformed("malformed chunk extension value")
                }
                state = .extensionQuoted
            case .sizeLF:
                guard byte == UInt8(ascii: "\n") else { throw Self.malformed("chunk size line not ended by CRLF") }
                digits = 0
                lineBytes = 0
                state = remaining == 0 ? .lineStart : .data
            case .dataCR:
                guard byte == UInt8(ascii: "\r") else { throw Self.malformed("chunk data longer than its size") }
                state = .dataLF
            case .dataLF:
                guard byte == UInt8(ascii: "\n") else { throw Self.malformed("chunk data not ended by CRLF") }
                state = .size
            case .lineStart:
                if byte == UInt8(ascii: "\r") {
                    state = .lastLF
                } else {
                    guard byte != UInt8(ascii: "\n") else { throw Self.malformed("trailer line not ended by CRLF") }
                    trailerBytes += 1
                    trailerLine.removeAll(keepingCapacity: true)
                    trailerLine.append(byte)
                    state = .trailer
                }
            case .trailer:
                trailerBytes += 1
                if byte == UInt8(ascii: "\r") {
                    state = .trailerLF
                } else {
                    // A bare LF, or any control character, is refused when the line is checked.
                    trailerLine.append(byte)
                }
            case .trailerLF:
                guard byte == UInt8(ascii: "\n") else { throw Self.malformed("CR without LF inside a trailer line") }
                if let error = trailerLine.withUnsafeBytes({ HeadParser.trailerLineError($0) }) { throw error }
                state = .lineStart
            case .lastLF:
                guard byte == UInt8(ascii: "\n") else { throw Self.malformed("chunked body not ended by CRLF") }
                state = .done
                trailerLine = []
                return index
            case .data, .done:
                break
            }
            if lineBytes > Self.maxLineBytes { throw Self.malformed("chunk size line too long") }
            if trailerBytes > Self.maxTrailerBytes { throw Self.malformed("trailer section too large") }
        }
        return index
    }

    /// What may follow a size, an extension name or value: whitespace, `;` (another extension) or CR.
    @inline(__always)
    private mutating func sizeLineDelimiter(_ byte: UInt8, else reason: StaticString) throws(HeadError) {
        if byte == UInt8(ascii: ";") {
            state = .extensionNameStart
        } else if byte == UInt8(ascii: "\r") {
            state = .sizeLF
        } else if Self.isWhitespace(byte) {
            state = .afterSize
        } else {
            throw HeadError(status: 400, reason: "\(reason)")
        }
    }

    @inline(__always)
    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    /// qdtext of RFC 9110 §5.6.4, and what a quoted-pair may escape (less `"` and `\`).
    @inline(__always)
    private static func isQuotedText(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\t") || (byte >= 0x20 && byte != 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\"))
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    private static func malformed(_ reason: String) -> HeadError { HeadError(status: 400, reason: reason) }
}
