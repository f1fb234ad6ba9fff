#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The HTTP/1.1 heads the router reads: parsed in place from the bytes that arrived, as offsets into
/// them, so a head can be forwarded by copying the lines it keeps instead of being decoded into strings
/// and encoded again. Pure: no I/O, no allocation beyond the caller's field list.
///
/// Strict where leniency lets two parsers disagree about where a message ends (RFC 9112 §11.2):
/// lines end in CRLF, no folded lines, no space before a field's colon, no control characters in
/// values, one Content-Length value, never Content-Length beside Transfer-Encoding in a request.

/// What a field means to the router; everything it does not act on is `other`.
enum FieldKind: UInt8, Sendable {
    case other
    case contentLength, transferEncoding, connection, keepAlive, proxyConnection
    case te, trailer, upgrade, proxyAuthenticate, proxyAuthorization
    case expect, xForwardedFor, host
    case xForwardedProto, xForwardedHost, forwarded

    /// Fields that describe one connection and are never forwarded (RFC 9110 §7.6.1).
    var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .trailer, .transferEncoding, .upgrade,
             .proxyAuthenticate, .proxyAuthorization:
            return true
        case .other, .contentLength, .expect, .xForwardedFor, .host, .xForwardedProto, .xForwardedHost, .forwarded:
            return false
        }
    }
}

/// One header field the router acts on (every kind but `other`): offsets from the first byte of the parsed
/// bytes. Other fields are validated but not listed; writers copy the lines between listed fields in bulk.
struct HeadField: Equatable, Sendable {
    var kind: FieldKind
    var name: Range<Int>
    /// Without the whitespace around it.
    var value: Range<Int>
    /// The whole line, CRLF included.
    var line: Range<Int>
}

/// How a message's body is delimited.
enum BodyFraming: Equatable, Sendable {
    case none
    case length(Int)
    case chunked
    /// A response without length: its body ends when the upstream closes the connection.
    case untilClose
}

/// Why a head was refused, and the status the router answers with.
struct HeadError: Error, Equatable, Sendable {
    var status: Int
    var reason: String
}

struct RequestHead: Equatable, Sendable {
    /// Bytes of the head from the parsed bytes' start, final empty line included.
    var length: Int
    /// Where the field lines start and end (the final empty line excluded).
    var fieldLines: Range<Int>
    var method: Range<Int>
    var target: Range<Int>
    var minorVersion: Int
    var isHEAD: Bool
    var body: BodyFraming
    var keepAlive: Bool
    var expectsContinue: Bool
    var hasHost: Bool
    /// Safe to send again after a connection broke (RFC 9110 §9.2.2): GET, HEAD, OPTIONS, TRACE, PUT, DELETE.
    var isIdempotent: Bool
    /// `Connection` names fields besides `close` and `keep-alive`: those are dropped too.
    var connectionNamesFields: Bool
    /// HTTP/1.1 with `Upgrade` and `Connection: upgrade`: on `101` the connection becomes a tunnel.
    var isUpgrade: Bool = false
}

struct ResponseHead: Equatable, Sendable {
    var length: Int
    var fieldLines: Range<Int>
    var status: Int
    /// From the status code to the end of the status line (CRLF excluded).
    var statusText: Range<Int>
    var minorVersion: Int
    var keepAlive: Bool
    /// `Transfer-Encoding` with `chunked` last: the body is chunked.
    var chunked: Bool
    /// `Transfer-Encoding` without `chunked` last: the body runs until the connection closes.
    var otherTransferCoding: Bool
    var contentLength: Int?
    var connectionNamesFields: Bool

    /// How this response's body is delimited, given whether the request was a HEAD.
    func framing(requestWasHEAD: Bool) -> BodyFraming {
        if requestWasHEAD || status < 200 || status == 204 || status == 304 { return .none }
        if chunked { return .chunked }
        if otherTransferCoding { return .untilClose }
        if let contentLength { return contentLength == 0 ? .none : .length(contentLength) }
        return .untilClose
    }
}

enum HeadParser {
    /// Larger heads are refused (431 for a request, 502 for a response).
    static let maxHeadBytes = 64 * 1024
    /// Content-Length values above this are refused as malformed.
    static let maxContentLength = 1 << 50

    enum Outcome<Head: Sendable>: Sendable {
        case incomplete
        case complete(Head)
        case failed(HeadError)
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")

    // MARK: Requests

    /// Parses the request head at the start of `bytes`. Empty lines before it (RFC 9112 §2.2) belong to the
    /// head's `length` and are skipped.
    static func request(_ bytes: UnsafeRawBufferPointer, fields: inout [HeadField]) -> Outcome<RequestHead> {
        var resume = 0
        return request(bytes, fields: &fields, resume: &resume)
    }

    /// As above, for bytes that arrive in pieces: `resume` (0 at first) keeps where the search for the head's
    /// end goes on when more bytes arrive, so a head sent a byte at a time is not read from its start every time.
    static func request(_ bytes: UnsafeRawBufferPointer, fields: inout [HeadField], resume: inout Int) -> Outcome<RequestHead> {
        fields.removeAll(keepingCapacity: true)
        var start = 0
        while start + 1 < bytes.count && bytes[start] == cr && bytes[start + 1] == lf { start += 2 }
        let lines: HeadLines
        switch headLines(bytes, from: start, resume: &resume,
                         tooLarge: HeadError(status: 431, reason: "request head larger than 64 KiB")) {
        case .incomplete: return .incomplete
        case .failed(let error): return .failed(error)
        case .complete(let found): lines = found
        }
        let requestLine = start..<lines.firstLineEnd
        // method SP request-target SP HTTP-version
        var index = requestLine.lowerBound
        while index < requestLine.upperBound && isTokenByte(bytes[index]) { index += 1 }
        let method = requestLine.lowerBound..<index
        guard !method.isEmpty, index < requestLine.upperBound, bytes[index] == space else {
            return .failed(HeadError(status: 400, reason: "malformed request line"))
        }
        index += 1
        let targetStart = index
        while index < requestLine.upperBound && bytes[index] > space && bytes[index] < 0x7F { index += 1 }
        let target = targetStart..<index
        guard !target.isEmpty, index < requestLine.upperBound, bytes[index] == space else {
            return .failed(HeadError(status: 400, reason: "malformed request line"))
        }
        index += 1
        let minor: Int
        switch version(bytes, index..<requestLine.upperBound) {
        case .some(let parsed): minor = parsed
        case .none:
            if matches(bytes, index, "HTTP/") && requestLine.upperBound - index == 8 {
                return .failed(HeadError(status: 505, reason: "only HTTP/1.0 and HTTP/1.1 are supported"))
            }
            return .failed(HeadError(status: 400, reason: "malformed request line"))
        }

        var summary = FieldSummary()
        if let error = parseFields(bytes, lines: lines, into: &fields, summary: &summary) { return .failed(error) }
        if summary.conflictingLengths {
            return .failed(HeadError(status: 400, reason: "conflicting Content-Length values"))
        }
        if summary.connectionNamesFraming {
            // Dropping one of these as hop-by-hop would change where the message ends or whom it is for.
            return .failed(HeadError(status: 400, reason: "Connection names Content-Length, Transfer-Encoding or Host"))
        }
        let body: BodyFraming
        if summary.transferEncoding {
            guard summary.contentLength == nil else {
                return .failed(HeadError(status: 400, reason: "both Transfer-Encoding and Content-Length"))
            }
            // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means its framing is faulty.
            guard minor == 1 else { return .failed(HeadError(status: 400, reason: "Transfer-Encoding in an HTTP/1.0 request")) }
            guard summary.transferEncodingFields == 1 else {
                return .failed(HeadError(status: 400, reason: "more than one Transfer-Encoding field"))
            }
            guard summary.chunkedCodings <= 1 else { return .failed(HeadError(status: 400, reason: "chunked applied more than once")) }
            guard summary.chunkedLast else {
                return .failed(HeadError(status: 400, reason: "Transfer-Encoding without chunked last"))
            }
            // Only `chunked` alone: a coding the router cannot undo would leave the color guessing (as nginx: 501).
            guard summary.codings == 1 else {
                return .failed(HeadError(status: 501, reason: "Transfer-Encoding other than chunked is not supported"))
            }
            body = .chunked
        } else if let length = summary.contentLength {
            body = length == 0 ? .none : .length(length)
        } else {
            body = .none
        }
        if summary.hosts > 1 { return .failed(HeadError(status: 400, reason: "more than one Host field")) }
        if minor == 1 && summary.hosts == 0 { return .failed(HeadError(status: 400, reason: "HTTP/1.1 request without Host")) }
        let isHEAD = method.count == 4 && matches(bytes, method.lowerBound, "HEAD")
        return .complete(RequestHead(
            length: lines.end, fieldLines: lines.fieldsStart..<(lines.end - 2), method: method, target: target, minorVersion: minor, isHEAD: isHEAD, body: body,
            keepAlive: minor == 1 ? !summary.close : (summary.keepAlive && !summary.close),
            expectsContinue: summary.expectsContinue && minor == 1, hasHost: summary.hosts > 0,
            isIdempotent: isHEAD || isIdempotent(bytes, method),
            connectionNamesFields: summary.connectionNamesFields,
            isUpgrade: minor == 1 && summary.connectionUpgrade && summary.upgrades > 0))
    }

    // MARK: Responses

    /// Parses the response head at the start of `bytes`.
    static func response(_ bytes: UnsafeRawBufferPointer, fields: inout [HeadField]) -> Outcome<ResponseHead> {
        var resume = 0
        return response(bytes, fields: &fields, resume: &resume)
    }

    static func response(_ bytes: UnsafeRawBufferPointer, fields: inout [HeadField], resume: inout Int) -> Outcome<ResponseHead> {
        fields.removeAll(keepingCapacity: true)
        let lines: HeadLines
        switch headLines(bytes, from: 0, resume: &resume,
                         tooLarge: HeadError(status: 502, reason: "response head larger than 64 KiB")) {
        case .incomplete: return .incomplete
        case .failed(var error):
            error.status = 502
            return .failed(error)
        case .complete(let found): lines = found
        }
        let statusLine = 0..<lines.firstLineEnd
        guard statusLine.count >= 12, let minor = version(bytes, 0..<8), bytes[8] == space,
              let status = threeDigits(bytes, 9), statusLine.count == 12 || bytes[12] == space
        else {
            return .failed(HeadError(status: 502, reason: "malformed status line from the upstream"))
        }
        for index in 9..<statusLine.upperBound where bytes[index] < space && bytes[index] != tab || bytes[index] == 0x7F {
            return .failed(HeadError(status: 502, reason: "control character in the status line from the upstream"))
        }
        var summary = FieldSummary()
        if var error = parseFields(bytes, lines: lines, into: &fields, summary: &summary) {
            error.status = 502
            error.reason += " from the upstream"
            return .failed(error)
        }
        if summary.conflictingLengths && !summary.transferEncoding {
            return .failed(HeadError(status: 502, reason: "conflicting Content-Length values from the upstream"))
        }
        return .complete(ResponseHead(
            length: lines.end, fieldLines: lines.fieldsStart..<(lines.end - 2), status: status, statusText: 9..<statusLine.upperBound, minorVersion: minor,
            keepAlive: minor == 1 ? !summary.close : (summary.keepAlive && !summary.close),
            chunked: summary.transferEncoding && summary.chunkedLast,
            otherTransferCoding: summary.transferEncoding && !summary.chunkedLast,
            contentLength: summary.transferEncoding ? nil : summary.contentLength,
            connectionNamesFields: summary.connectionNamesFields))
    }

    // MARK: Lines and fields

    private struct HeadLines {
        /// End of the first line (its CR).
        var firstLineEnd: Int
        /// First byte after the start line's CRLF.
        var fieldsStart: Int
        /// First byte after the empty line that ends the head.
        var end: Int
    }

    /// Finds the end of the head: the first empty line. Every line must end in CRLF (a CR anywhere else, a line
    /// end to some parsers and a space to others, is refused by the line checks). Empty lines before the head
    /// count towards its size limit.
    private static func headLines(_ bytes: UnsafeRawBufferPointer, from start: Int, resume: inout Int, tooLarge: HeadError)
        -> Outcome<HeadLines> {
        guard let base = bytes.baseAddress else { return .incomplete }
        var lineStart = max(start, resume)
        var firstLineEnd = -1
        if lineStart > start, let found = memchr(base + start, Int32(lf), lineStart - start) {
            // The start line was complete when these bytes were last looked at.
            firstLineEnd = base.distance(to: UnsafeRawPointer(found)) - 1
        } else {
            lineStart = start
        }
        while true {
            let remaining = bytes.count - lineStart
            guard remaining > 0, let found = memchr(base + lineStart, Int32(lf), remaining) else {
                resume = lineStart
                return bytes.count > maxHeadBytes ? .failed(tooLarge) : .incomplete
            }
            let newline = base.distance(to: UnsafeRawPointer(found))
            guard newline > lineStart, bytes[newline - 1] == cr else {
                return .failed(HeadError(status: 400, reason: "line not ended by CRLF"))
            }
            if newline + 1 > maxHeadBytes { return .failed(tooLarge) }
            if firstLineEnd < 0 {
                guard newline - 1 > lineStart else { return .failed(HeadError(status: 400, reason: "empty start line")) }
                firstLineEnd = newline - 1
            } else if newline - 1 == lineStart {
                return .complete(HeadLines(firstLineEnd: firstLineEnd, fieldsStart: firstLineEnd + 2, end: newline + 1))
            }
            lineStart = newline + 1
        }
    }

    /// What the fields say about framing and the connection.
    private struct FieldSummary {
        var contentLength: Int?
        var conflictingLengths = false
        var transferEncoding = false
        var chunkedLast = false
        var transferEncodingFields = 0
        /// Transfer codings listed, in all fields, and how many of them are `chunked`.
        var codings = 0
        var chunkedCodings = 0
        /// `Connection` names `Content-Length`, `Transfer-Encoding` or `Host`.
        var connectionNamesFraming = false
        var connectionUpgrade = false
        var upgrades = 0
        var close = false
        var keepAlive = false
        var connectionNamesFields = false
        var expectsContinue = false
        var hosts = 0
    }

    private static func parseFields(_ bytes: UnsafeRawBufferPointer, lines: HeadLines, into fields: inout [HeadField],
                                    summary: inout FieldSummary) -> HeadError? {
        guard let base = bytes.baseAddress else { return nil }
        var lineStart = lines.fieldsStart
        let headEnd = lines.end - 2
        while lineStart < headEnd {
            // Every LF of the head follows a CR (checked by `headLines`). Searching for the LF, not the CR, leaves
            // a CR inside the line to the checks below.
            let lineEnd = base.distance(to: UnsafeRawPointer(memchr(base + lineStart, Int32(lf), headEnd - lineStart + 2)!)) - 1
            let (name, value, failure) = fieldLine(bytes, lineStart, lineEnd)
            if let failure { return failure }
            let kind = classify(bytes, name)
            if kind != .other { fields.append(HeadField(kind: kind, name: name, value: value, line: lineStart..<(lineEnd + 2))) }
            switch kind {
            case .contentLength:
                guard let length = decimal(bytes, value) else {
                    return HeadError(status: 400, reason: "malformed Content-Length")
                }
                if let existing = summary.contentLength, existing != length { summary.conflictingLengths = true }
                summary.contentLength = length
            case .transferEncoding:
                summary.transferEncoding = true
                summary.transferEncodingFields += 1
                // Codings apply in order; only the last one of the last field decides the framing.
                var last: Range<Int>? = nil
                forEachToken(bytes, value) { token in
                    summary.codings += 1
                    if equalsIgnoringCase(bytes, token, "chunked") { summary.chunkedCodings += 1 }
                    last = token
                }
                summary.chunkedLast = last.map { equalsIgnoringCase(bytes, $0, "chunked") } ?? false
            case .connection:
                forEachToken(bytes, value) { token in
                    if equalsIgnoringCase(bytes, token, "close") {
                        summary.close = true
                    } else if equalsIgnoringCase(bytes, token, "keep-alive") {
                        summary.keepAlive = true
                    } else if equalsIgnoringCase(bytes, token, "upgrade") {
                        // Names the hop-by-hop `Upgrade`, which is dropped anyway unless the exchange upgrades.
                        summary.connectionUpgrade = true
                    } else {
                        summary.connectionNamesFields = true
                        if equalsIgnoringCase(bytes, token, "content-length") || equalsIgnoringCase(bytes, token, "transfer-encoding")
                            || equalsIgnoringCase(bytes, token, "host") {
                            summary.connectionNamesFraming = true
                        }
                    }
                }
            case .expect:
                if equalsIgnoringCase(bytes, value, "100-continue") { summary.expectsContinue = true }
            case .host:
                summary.hosts += 1
            case .upgrade:
                summary.upgrades += 1
            default:
                break
            }
            lineStart = lineEnd + 2
        }
        return nil
    }

    /// Checks one field line (`lineEnd` is its CR): no folding, a token name directly followed by the colon, no
    /// control characters in the value. Returns the name and the value without the whitespace around it.
    @inline(__always)
    private static func fieldLine(_ bytes: UnsafeRawBufferPointer, _ lineStart: Int, _ lineEnd: Int)
        -> (name: Range<Int>, value: Range<Int>, failure: HeadError?) {
        if bytes[lineStart] == space || bytes[lineStart] == tab {
            return (0..<0, 0..<0, HeadError(status: 400, reason: "folded header line"))
        }
        var index = lineStart
        while index < lineEnd && isTokenByte(bytes[index]) { index += 1 }
        guard index > lineStart, index < lineEnd, bytes[index] == UInt8(ascii: ":") else {
            return (0..<0, 0..<0, HeadError(status: 400, reason: "malformed header field name"))
        }
        let name = lineStart..<index
        index += 1
        while index < lineEnd && (bytes[index] == space || bytes[index] == tab) { index += 1 }
        let valueStart = index
        var valueEnd = valueStart
        while index < lineEnd {
            let byte = bytes[index]
            if byte < space && byte != tab || byte == 0x7F {
                return (0..<0, 0..<0, HeadError(status: 400, reason: byte == cr ? "CR without LF inside a line"
                                                                                 : "control character in a header field value"))
            }
            index += 1
            if byte != space && byte != tab { valueEnd = index }
        }
        return (name, valueStart..<valueEnd, nil)
    }

    /// Checks one trailer line of a chunked body (CRLF excluded) as a header field line. Fields that frame or
    /// address a message may not come in a trailer (RFC 9110 §6.5.1).
    static func trailerLineError(_ bytes: UnsafeRawBufferPointer) -> HeadError? {
        guard !bytes.isEmpty else { return HeadError(status: 400, reason: "empty trailer line") }
        let (name, _, failure) = fieldLine(bytes, 0, bytes.count)
        if var failure {
            failure.reason += " in a trailer"
            return failure
        }
        switch classify(bytes, name) {
        case .contentLength, .transferEncoding, .host, .connection:
            return HeadError(status: 400, reason: "framing or connection field in a trailer")
        default:
            return nil
        }
    }

    // MARK: Small readers

    private static func isIdempotent(_ bytes: UnsafeRawBufferPointer, _ method: Range<Int>) -> Bool {
        switch method.count {
        case 3: return matches(bytes, method.lowerBound, "GET") || matches(bytes, method.lowerBound, "PUT")
        case 5: return matches(bytes, method.lowerBound, "TRACE")
        case 6: return matches(bytes, method.lowerBound, "DELETE")
        case 7: return matches(bytes, method.lowerBound, "OPTIONS")
        default: return false
        }
    }

    /// `HTTP/1.0` or `HTTP/1.1` exactly filling `range`: the minor version.
    private static func version(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard range.count == 8, matches(bytes, range.lowerBound, "HTTP/1.") else { return nil }
        switch bytes[range.lowerBound + 7] {
        case UInt8(ascii: "0"): return 0
        case UInt8(ascii: "1"): return 1
        default: return nil
        }
    }

    private static func threeDigits(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> Int? {
        var value = 0
        for index in at..<(at + 3) {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value >= 100 ? value : nil
    }

    private static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 16 else { return nil }
        var value = 0
        for index in range {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value <= maxContentLength ? value : nil
    }

    /// Calls `body` with each comma-separated token of a field value, trimmed, empty ones skipped.
    static func forEachToken(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var index = range.lowerBound
        while index < range.upperBound {
            while index < range.upperBound && (bytes[index] == space || bytes[index] == tab || bytes[index] == UInt8(ascii: ",")) {
                index += 1
            }
            let start = index
            var end = index
            while index < range.upperBound && bytes[index] != UInt8(ascii: ",") {
                if bytes[index] != space && bytes[index] != tab { end = index + 1 }
                index += 1
            }
            if end > start { body(start..<end) }
        }
    }

    static func matches(_ bytes: UnsafeRawBufferPointer, _ at: Int, _ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard at + count <= bytes.count else { return false }
        let pointer = literal.utf8Start
        for offset in 0..<count where bytes[at + offset] != pointer[offset] { return false }
        return true
    }

    /// ASCII case-insensitive comparison of `range` with a lower-case literal.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        let pointer = literal.utf8Start
        for offset in 0..<range.count where lowercased(bytes[range.lowerBound + offset]) != pointer[offset] {
            return false
        }
        return true
    }

    /// ASCII case-insensitive comparison of two ranges of the same bytes.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        for offset in 0..<a.count where lowercased(bytes[a.lowerBound + offset]) != lowercased(bytes[b.lowerBound + offset]) {
            return false
        }
        return true
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
    }

    /// tchar of RFC 9110 §5.6.2.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func classify(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> FieldKind {
        switch name.count {
        case 2: return equalsIgnoringCase(bytes, name, "te") ? .te : .other
        case 4: return equalsIgnoringCase(bytes, name, "host") ? .host : .other
        case 6: return equalsIgnoringCase(bytes, name, "expect") ? .expect : .other
        case 9: return equalsIgnoringCase(bytes, name, "forwarded") ? .forwarded : .other
        case 7:
            if equalsIgnoringCase(bytes, name, "trailer") { return .trailer }
            return equalsIgnoringCase(bytes, name, "upgrade") ? .upgrade : .other
        case 10:
            if equalsIgnoringCase(bytes, name, "connection") { return .connection }
            return equalsIgnoringCase(bytes, name, "keep-alive") ? .keepAlive : .other
        case 14: return equalsIgnoringCase(bytes, name, "content-length") ? .contentLength : .other
        case 15: return equalsIgnoringCase(bytes, name, "x-forwarded-for") ? .xForwardedFor : .other
        case 16:
            if equalsIgnoringCase(bytes, name, "proxy-connection") { return .proxyConnection }
            return equalsIgnoringCase(bytes, name, "x-forwarded-host") ? .xForwardedHost : .other
        case 17:
            if equalsIgnoringCase(bytes, name, "transfer-encoding") { return .transferEncoding }
            return equalsIgnoringCase(bytes, name, "x-forwarded-proto") ? .xForwardedProto : .other
        case 18: return equalsIgnoringCase(bytes, name, "proxy-authenticate") ? .proxyAuthenticate : .other
        case 19: return equalsIgnoringCase(bytes, name, "proxy-authorization") ? .proxyAuthorization : .other
        default: return .other
        }
    }
}
