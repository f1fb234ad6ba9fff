import CLibgit2

/// A git object id (40 hex characters).
public struct ObjectID: Hashable, Sendable, CustomStringConvertible, Codable {
    public let hex: String

    public init?(hex: String) {
        guard hex.count == 40, hex.allSatisfy(\.isHexDigit) else { return nil }
        self.hex = hex.lowercased()
    }

    init(_ oid: git_oid) {
        var copy = oid
        var buffer = [CChar](repeating: 0, count: 41)
        git_oid_tostr(&buffer, 41, &copy)
        hex = String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    var oid: git_oid {
        var oid = git_oid()
        _ = git_oid_fromstr(&oid, hex)
        return oid
    }

    public var description: String { hex }
    /// The short form shown to people.
    public var short: String { String(hex.prefix(8)) }

    /// The id git gives a blob with these bytes (what `git hash-object` prints).
    public static func hashBlob(_ bytes: [UInt8]) -> ObjectID {
        Libgit2.ensure()
        var oid = git_oid()
        bytes.withUnsafeBytes { _ = git_odb_hash(&oid, $0.baseAddress, $0.count, GIT_OBJECT_BLOB) }
        return ObjectID(oid)
    }
}
