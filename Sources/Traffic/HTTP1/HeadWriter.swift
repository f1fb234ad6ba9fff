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
    /// What the upstream head usually needs: the client's head, plus the forwarding fields with the client's address
    /// twice and the Host value twice (about 150 bytes for a short host), plus the framing line the caller may add.
    /// A longer head is written again with more room.
    static func upstreamRequestRoom(_ head: RequestHead, client: ForwardedClient?, host: String) -> Int {
        head.length + 2 * (client?.address.count ?? 0) + host.utf8.count + 256
    }

    static func upstreamRequest(_ head: RequestHead, bytes: UnsafeRawBufferPointer, fields: [HeadField],
                                client: ForwardedClient?, host: String, leaveOpen: Bool = false, upgrade: Bool = false,
                                trusted: Bool = true, scheme: StaticString = "http", into buffer: inout ByteBuffer) {
        buffer.writeHead(estimate: upstreamRequestRoom(head, client: client, host: host)) { out in
            out.append(bytes, head.method)
            out.append(byte: UInt8(ascii: " "))
            out.append(bytes, head.target)
            out.append(" HTTP/1.1\r\n")
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
                    if !leaveOpen { out.append(bytes, field.line) }
                    continue
                case .upgrade where upgrade:
                    out.append(bytes, field.line)
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
                copyField(field, connectionNamesFields: head.connectionNamesFields, bytes: bytes, fields: fields, into: &out)
            }
            copyLines(cursor..<head.fieldLines.upperBound, bytes: bytes, fields: fields, filter: head.connectionNamesFields, into: &out)
            if forwardedFor > 0 || client != nil {
                out.append("X-Forwarded-For: ")
                var first = true
                for field in fields where trusted && field.kind == .xForwardedFor && !field.value.isEmpty {
                    if !first { out.append(", ") }
                    out.append(bytes, field.value)
                    first = false
                }
                if let client {
                    if !first { out.append(", ") }
                    out.append(client.address)
                }
                out.append("\r\n")
            }
            if !hasProto {
                out.append("X-Forwarded-Proto: ")
                out.append(scheme)
                out.append("\r\n")
            }
            if !hasForwardedHost, let hostValue, !hostValue.isEmpty {
                out.append("X-Forwarded-Host: ")
                out.append(bytes, hostValue)
                out.append("\r\n")
            }
            out.append("Forwarded: ")
            for field in fields where forwarded > 0 && field.kind == .forwarded && !field.value.isEmpty {
                out.append(bytes, field.value)
                out.append(", ")
            }
            if let client { out.append(client.forwardedFor) }
            if let hostValue, !hostValue.isEmpty {
                out.append("host=")
                writeForwardedValue(UnsafeRawBufferPointer(rebasing: bytes[hostValue]), into: &out)
                out.append(byte: UInt8(ascii: ";"))
            }
            out.append("proto=")
            out.append(scheme)
            out.append("\r\n")
            if !head.hasHost {
                out.append("Host: ")
                out.append(host)
                out.append("\r\n")
            }
            if upgrade { out.append("Connection: upgrade\r\n") }
            if !leaveOpen { out.append("\r\n") }
        }
    }

    /// The response head for the client: the client's HTTP version, hop-by-hop fields dropped (the
    /// `Transfer-Encoding` lines kept when the body passes through with its codings), and `Connection` as the
    /// router decided.
    /// With `upgraded` (a `101` to an upgrade request), `Upgrade` is kept and `Connection: upgrade` sent.
    static func clientResponse(_ head: ResponseHead, bytes: UnsafeRawBufferPointer, fields: [HeadField],
                               clientMinorVersion: Int, keepAlive: Bool, passesTransferCoding: Bool, upgraded: Bool = false,
                               into buffer: inout ByteBuffer) {
        // Never longer than the color's head plus a `Connection` line.
        buffer.writeHead(estimate: head.length + 32) { out in
            out.append(clientMinorVersion == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
            out.append(bytes, head.statusText)
            out.append("\r\n")
            var cursor = head.fieldLines.lowerBound
            for field in fields {
                copyLines(cursor..<field.line.lowerBound, bytes: bytes, fields: fields, filter: head.connectionNamesFields, into: &out)
                cursor = field.line.upperBound
                switch field.kind {
                case .transferEncoding:
                    if passesTransferCoding { out.append(bytes, field.line) }
                    continue
                case .contentLength where head.chunked || head.otherTransferCoding:
                    continue
                case .upgrade where upgraded:
                    out.append(bytes, field.line)
                    continue
                default:
                    if field.kind.isHopByHop { continue }
                }
                copyField(field, connectionNamesFields: head.connectionNamesFields, bytes: bytes, fields: fields, into: &out)
            }
            copyLines(cursor..<head.fieldLines.upperBound, bytes: bytes, fields: fields, filter: head.connectionNamesFields, into: &out)
            if upgraded {
                out.append("Connection: upgrade\r\n")
            } else if !keepAlive {
                out.append("Connection: close\r\n")
            } else if clientMinorVersion == 0 {
                out.append("Connection: keep-alive\r\n")
            }
            out.append("\r\n")
        }
    }

    /// A field line kept as it came, unless a `Connection` field names it.
    private static func copyField(_ field: HeadField, connectionNamesFields: Bool, bytes: UnsafeRawBufferPointer, fields: [HeadField],
                                  into out: inout HeadBytes) {
        if connectionNamesFields && mayBeNamed(field.kind) && namedByConnection(field.name, bytes: bytes, fields: fields) { return }
        out.append(bytes, field.line)
    }

    /// Copies whole field lines the router does not act on: in one piece, or, when a `Connection` field
    /// names fields to drop, line by line without those.
    private static func copyLines(_ range: Range<Int>, bytes: UnsafeRawBufferPointer, fields: [HeadField], filter: Bool,
                                  into out: inout HeadBytes) {
        guard !range.isEmpty else { return }
        guard filter else {
            out.append(bytes, range)
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
                out.append(bytes, line)
            }
            lineStart = line.upperBound
        }
    }

    /// A value of a `Forwarded` parameter: a token as it is, anything else as a quoted string (RFC 7239 §4).
    private static func writeForwardedValue(_ value: UnsafeRawBufferPointer, into out: inout HeadBytes) {
        if value.allSatisfy(HeadParser.isTokenByte) {
            out.append(value)
            return
        }
        out.append(byte: UInt8(ascii: "\""))
        for byte in value {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(byte: UInt8(ascii: "\\")) }
            out.append(byte: byte)
        }
        out.append(byte: UInt8(ascii: "\""))
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
