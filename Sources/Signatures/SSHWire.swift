import Foundation

/// Reads the SSH wire encoding (RFC 4251): `uint32` and length-prefixed `string`s, big-endian.
struct SSHWireReader {
    private let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }

    mutating func raw(_ count: Int) throws -> [UInt8] {
        guard count >= 0, bytes.count - offset >= count else { throw SignatureError.malformed("truncated at byte \(offset)") }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func uint32() throws -> UInt32 {
        try raw(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func string() throws -> [UInt8] {
        let length = try uint32()
        guard length <= UInt32(bytes.count - offset) else { throw SignatureError.malformed("a field of \(length) bytes runs past the end") }
        return try raw(Int(length))
    }

    mutating func text() throws -> String {
        let value = try string()
        guard let text = String(bytes: value, encoding: .utf8) else { throw SignatureError.malformed("a name is not UTF-8") }
        return text
    }
}

/// Writes the SSH wire encoding.
struct SSHWireWriter {
    private(set) var bytes: [UInt8] = []

    mutating func raw(_ value: some Sequence<UInt8>) { bytes.append(contentsOf: value) }

    mutating func uint32(_ value: UInt32) {
        bytes.append(contentsOf: [UInt8(value >> 24 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)])
    }

    mutating func string(_ value: some Collection<UInt8>) {
        uint32(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ value: String) { string(Array(value.utf8)) }
}
