import CLibgit2
import Foundation

/// What history shows of a commit.
public struct CommitInfo: Sendable, Hashable, Codable {
    public var id: ObjectID
    public var parents: [ObjectID]
    public var authorName: String
    public var authorEmail: String
    public var date: Date
    /// The first line of the message.
    public var subject: String
    public var message: String
}

/// A person and a time, for commits and notes.
public struct Signature: Sendable {
    public var name: String
    public var email: String
    public var date: Date

    public init(name: String, email: String, date: Date = Date()) {
        self.name = name
        self.email = email
        self.date = date
    }

    func withPointer<T>(_ body: (UnsafeMutablePointer<git_signature>) throws -> T) throws -> T {
        var sig: UnsafeMutablePointer<git_signature>?
        let offset = Int32(TimeZone.current.secondsFromGMT(for: date) / 60)
        try check(git_signature_new(&sig, name, email, git_time_t(date.timeIntervalSince1970), offset), "create signature")
        defer { git_signature_free(sig) }
        return try body(sig!)
    }
}
