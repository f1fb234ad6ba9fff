import NIOCore

/// A head being written into memory reserved for it, with plain stores.
///
/// Writing a head piece by piece through `ByteBuffer` costs a uniqueness check, a capacity check and a runtime
/// exclusivity check per piece (about twenty per head); here they are paid once per head. Every append checks
/// the room left: a head that needs more than was reserved marks itself overflowed, and
/// `ByteBuffer.writeHead` runs the writer again with twice the room, so the estimate only has to be usually right.
struct HeadBytes {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private(set) var count = 0
    /// Something did not fit: what was written is incomplete and is thrown away.
    private(set) var overflowed = false

    fileprivate init(_ memory: UnsafeMutableRawBufferPointer) {
        base = memory.baseAddress!
        capacity = memory.count
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let length = bytes.count
        guard length > 0 else { return }
        guard !overflowed, length <= capacity - count else {
            overflowed = true
            return
        }
        (base + count).copyMemory(from: bytes.baseAddress!, byteCount: length)
        count += length
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
        append(UnsafeRawBufferPointer(rebasing: bytes[range]))
    }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    mutating func append(byte: UInt8) {
        guard !overflowed, count < capacity else {
            overflowed = true
            return
        }
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }
}

extension ByteBuffer {
    /// Writes a head through `body` into `estimate` bytes or more of room; when that was not enough, the partial
    /// head is discarded and `body` runs again with twice the room.
    mutating func writeHead(estimate: Int, _ body: (inout HeadBytes) -> Void) {
        var room = Swift.max(estimate, 64)
        while true {
            var written = false
            writeWithUnsafeMutableBytes(minimumWritableBytes: room) { memory in
                var head = HeadBytes(memory)
                body(&head)
                guard !head.overflowed else { return 0 }
                written = true
                return head.count
            }
            if written { return }
            room *= 2
        }
    }
}

/// The client's address as the forwarding fields spell it, worked out once per connection.
struct ForwardedClient: Equatable {
    /// As `X-Forwarded-For` gives it.
    let address: [UInt8]
    /// The `for=…;` element of `Forwarded` (RFC 7239): an IPv6 address quoted, in brackets.
    let forwardedFor: [UInt8]

    init(_ address: String) {
        self.address = Array(address.utf8)
        forwardedFor = address.utf8.contains(UInt8(ascii: ":"))
            ? Array("for=\"[\(address)]\";".utf8)
            : Array("for=\(address);".utf8)
    }
}
