import NIOCore

/// Writes the heads the router sends, copying the lines it keeps from the parsed head.
enum HeadWriter {
    /// The request head for the upstream: HTTP/1.1, hop-by-hop fields and the fields `Connection` names
    /// dropped, `Expect: 100-continue` dropped when the router answered it, and `Host` added when an HTTP/1.0
    /// client sent none.
    ///
    /// Forwarding fields: the client's address is appended to `X-Forwarded-For`, and an element
    /// `for=…;host=…;proto=…` to `Forwarded` (RFC 7239); `X-Forwarded-Proto` (`scheme`) and `X-Forwarded-Host` (the
    /// request's `Host`) are added when the client did not send them. From a client that is not `trusted`, all
    /// four are dropped first, so what the color reads was set by the router.
    ///
    /// With `leaveOpen`, `Transfer-Encoding` is left out and so is the empty line that ends the head: the caller
    /// adds the framing it chose (a chunked body the router collected goes out with `Content-Length`). With
    /// `upgrade`, `Upgrade` is kept and `Connection: upgrade` sent.
    static func upstreamRequest(_ head: RequestHead, bytes: UnsafeRawBufferPointer, fields: [HeadField],
                                clientAddress: String?, host: String, leaveOpen: Bool = false, upgrade: Bool = false,
                                trusted: Bool = true, scheme: StaticString = "http", into out: inout ByteBuffer) {
        out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[head.method]))
        out.writeInteger(UInt8(ascii: " "))
        out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[head.target]))
        out.writeStaticString(" HTTP/1.1\r\n")
        var cursor = head.fieldLines.lowerBound
        var forwardedFor = 0
        var forwarded = 0
        var hasProto = false
        var hasForwardedHost = false
        var hostValue: Range<Int>?
        for field in fields {
            copyLines(cursor..<field.line.lowerBound, bytes: bytes, fields: fields, filter: head.connectionNamesFields, into: &out)
            cursor = field.line.upperBound
            switch field.kind {
            case .transferEncoding:
                // A body forwarded with its chunked framing keeps its coding.
                if !leaveOpen { out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.line])) }
                continue
            case .upgrade where upgrade:
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.line]))
                continue
            case .expect where head.expectsContinue:
                continue
            case .xForwardedFor:
                if trusted { forwardedFor += 1 }
                continue
            case .forwarded:
                if trusted { forwarded += 1 }
                continue
            case .xForwardedProto, .xForwardedHost:
                guard trusted else { continue }
                if field.kind == .xForwardedProto { hasProto = true } else { hasForwardedHost = true }
            case .host:
                hostValue = field.value
            default:
                if field.kind.isHopByHop { continue }
            }
            if head.connectionNamesFields && mayBeNamed(field.kind) && namedByConnection(field.name, bytes: bytes, fields: fields) {
                continue
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.line]))
        }
        copyLines(cursor..<head.fieldLines.upperBound, bytes: bytes, fields: fields, filter: head.connectionNamesFields, into: &out)
        if forwardedFor > 0 || clientAddress != nil {
            out.writeStaticString("X-Forwarded-For: ")
            var first = true
            for field in fields where trusted && field.kind == .xForwardedFor && !field.value.isEmpty {
                if !first { out.writeStaticString(", ") }
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.value]))
                first = false
            }
            if let clientAddress {
                if !first { out.writeStaticString(", ") }
                out.writeString(clientAddress)
            }
            out.writeStaticString("\r\n")
        }
        if !hasProto {
            out.writeStaticString("X-Forwarded-Proto: ")
            out.writeStaticString(scheme)
            out.writeStaticString("\r\n")
        }
        if !hasForwardedHost, let hostValue, !hostValue.isEmpty {
            out.writeStaticString("X-Forwarded-Host: ")
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[hostValue]))
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("Forwarded: ")
        for field in fields where forwarded > 0 && field.kind == .forwarded && !field.value.isEmpty {
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.value]))
            out.writeStaticString(", ")
        }
        if let clientAddress {
            out.writeStaticString("for=")
            if clientAddress.utf8.contains(UInt8(ascii: ":")) {
                out.writeStaticString("\"[")
                out.writeString(clientAddress)
                out.writeStaticString("]\";")
            } else {
                out.writeString(clientAddress)
                out.writeInteger(UInt8(ascii: ";"))
            }
        }
        if let hostValue, !hostValue.isEmpty {
            out.writeStaticString("host=")
            writeForwardedValue(UnsafeRawBufferPointer(rebasing: bytes[hostValue]), into: &out)
            out.writeInteger(UInt8(ascii: ";"))
        }
        out.writeStaticString("proto=")
        out.writeStaticString(scheme)
        out.writeStaticString("\r\n")
        if !head.hasHost {
            out.writeStaticString("Host: ")
            out.writeString(host)
            out.writeStaticString("\r\n")
        }
        if upgrade { out.writeStaticString("Connection: upgrade\r\n") }
        if !leaveOpen { out.writeStaticString("\r\n") }
    }

    /// The response head for the client: the client's HTTP version, hop-by-hop fields dropped (the
    /// `Transfer-Encoding` lines kept when the body passes through with its codings), and `Connection` as the
    /// router decided.
    /// With `upgraded` (a `101` to an upgrade request), `Upgrade` is kept and `Connection: upgrade` sent.
    static func clientResponse(_ head: ResponseHead, bytes: UnsafeRawBufferPointer, fields: [HeadField],
                               clientMinorVersion: Int, keepAlive: Bool, passesTransferCoding: Bool, upgraded: Bool = false,
                               into out: inout ByteBuffer) {
        out.writeStaticString(clientMinorVersion == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[head.statusText]))
        out.writeStaticString("\r\n")
        var cursor = head.fieldLines.lowerBound
        for field in fields {
            copyLines(cursor..<field.line.lowerBound, bytes: bytes, fields: fields, filter: head.connectionNamesFields, into: &out)
            cursor = field.line.upperBound
            switch field.kind {
            case .transferEncoding:
                if passesTransferCoding { out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.line])) }
                continue
            case .contentLength where head.chunked || head.otherTransferCoding:
                continue
            case .upgrade where upgraded:
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.line]))
                continue
            default:
                if field.kind.isHopByHop { continue }
            }
            if head.connectionNamesFields && mayBeNamed(field.kind) && namedByConnection(field.name, bytes: bytes, fields: fields) {
                continue
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.line]))
        }
        copyLines(cursor..<head.fieldLines.upperBound, bytes: bytes, fields: fields, filter: head.connectionNamesFields, into: &out)
        if upgraded {
            out.writeStaticString("Connection: upgrade\r\n")
        } else if !keepAlive {
            out.writeStaticString("Connection: close\r\n")
        } else if clientMinorVersion == 0 {
            out.writeStaticString("Connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
    }

    /// Copies whole field lines the router does not act on: in one piece, or, when a `Connection` field
    /// names fields to drop, line by line without those.
    private static func copyLines(_ range: Range<Int>, bytes: UnsafeRawBufferPointer, fields: [HeadField], filter: Bool,
                                  into out: inout ByteBuffer) {
        guard !range.isEmpty else { return }
        guard filter else {
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[range]))
            return
        }
        // The parser checked these lines: each is `name:value` and ends in CRLF.
        var lineStart = range.lowerBound
        while lineStart < range.upperBound {
            var colon = lineStart
            while bytes[colon] != UInt8(ascii: ":") { colon += 1 }
            var lineEnd = colon
            while bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            let line = lineStart..<(lineEnd + 1)
            if !namedByConnection(lineStart..<colon, bytes: bytes, fields: fields) {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[line]))
            }
            lineStart = line.upperBound
        }
    }

    /// A value of a `Forwarded` parameter: a token as it is, anything else as a quoted string (RFC 7239 §4).
    private static func writeForwardedValue(_ value: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        if value.allSatisfy(HeadParser.isTokenByte) {
            out.writeBytes(value)
            return
        }
        out.writeInteger(UInt8(ascii: "\""))
        for byte in value {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.writeInteger(UInt8(ascii: "\\")) }
            out.writeInteger(byte)
        }
        out.writeInteger(UInt8(ascii: "\""))
    }

    /// A whole response of the router itself (an error page in plain text).
    static func answer(status: Int, message: String, minorVersion: Int, keepAlive: Bool, includeBody: Bool,
                       into out: inout ByteBuffer) {
        out.writeStaticString(minorVersion == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        out.writeString("\(status) \(reasonPhrase(status))\r\n")
        out.writeStaticString("Content-Type: text/plain; charset=utf-8\r\n")
        out.writeString("Content-Length: \(message.utf8.count)\r\n")
        out.writeStaticString(keepAlive ? (minorVersion == 0 ? "Connection: keep-alive\r\n" : "") : "Connection: close\r\n")
        out.writeStaticString("\r\n")
        if includeBody { out.writeString(message) }
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 400: "Bad Request"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 431: "Request Header Fields Too Large"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Error"
        }
    }

    /// Fields that frame or address the message are never removed because `Connection` names them: dropping
    /// `Content-Length` while forwarding the body it measures would let a second message hide in the first.
    private static func mayBeNamed(_ kind: FieldKind) -> Bool {
        kind != .contentLength && kind != .transferEncoding && kind != .host
    }

    /// Whether a `Connection` field of this head names the field called `name` (RFC 9110 §7.6.1).
    private static func namedByConnection(_ name: Range<Int>, bytes: UnsafeRawBufferPointer, fields: [HeadField]) -> Bool {
        var named = false
        for connection in fields where connection.kind == .connection {
            HeadParser.forEachToken(bytes, connection.value) { token in
                if HeadParser.equalsIgnoringCase(bytes, token, name) { named = true }
            }
        }
        return named
    }
}
