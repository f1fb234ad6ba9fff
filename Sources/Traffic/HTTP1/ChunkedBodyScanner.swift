/// Follows a chunked body (RFC 9112 §7.1) as its bytes pass through, to find where it ends, without
/// copying it. Chunk data is skipped in bulk; only sizes, extensions and trailers are read byte by byte.
/// Pure: feed it bytes in any split, it keeps its place between calls.
struct ChunkedBodyScanner: Sendable {
    private enum State: Sendable {
        case size, sizeExtension, sizeLF, data, dataCR, dataLF, lineStart, trailer, trailerLF, lastLF, done
    }

    /// Longest chunk-size line (with extensions) and largest trailer section accepted.
    static let maxLineBytes = 4096
    static let maxTrailerBytes = 64 * 1024
    private static let maxChunkSize = 1 << 48

    private var state = State.size
    private var remaining = 0
    private var digits = 0
    private var lineBytes = 0
    private var trailerBytes = 0

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
                if let value = Self.hexValue(byte) {
                    guard remaining < Self.maxChunkSize else { throw Self.malformed("chunk size too large") }
                    remaining = remaining << 4 | value
                    digits += 1
                } else if digits > 0 && (byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")) {
                    state = .sizeExtension
                } else if digits > 0 && byte == UInt8(ascii: "\r") {
                    state = .sizeLF
                } else {
                    throw Self.malformed("malformed chunk size")
                }
                lineBytes += 1
            case .sizeExtension:
                lineBytes += 1
                if byte == UInt8(ascii: "\r") {
                    state = .sizeLF
                } else if byte == UInt8(ascii: "\n") || (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F {
                    throw Self.malformed("malformed chunk extension")
                }
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
                    state = .trailer
                }
            case .trailer:
                trailerBytes += 1
                if byte == UInt8(ascii: "\r") {
                    state = .trailerLF
                } else if byte == UInt8(ascii: "\n") {
                    throw Self.malformed("trailer line not ended by CRLF")
                }
            case .trailerLF:
                guard byte == UInt8(ascii: "\n") else { throw Self.malformed("trailer line not ended by CRLF") }
                state = .lineStart
            case .lastLF:
                guard byte == UInt8(ascii: "\n") else { throw Self.malformed("chunked body not ended by CRLF") }
                state = .done
                return index
            case .data, .done:
                break
            }
            if lineBytes > Self.maxLineBytes { throw Self.malformed("chunk size line too long") }
            if trailerBytes > Self.maxTrailerBytes { throw Self.malformed("trailer section too large") }
        }
        return index
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
