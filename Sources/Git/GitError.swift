import CLibgit2

/// A failed libgit2 call, with libgit2's own message.
public struct GitError: Error, Sendable, CustomStringConvertible {
    public var code: Int32
    public var operation: String
    public var message: String

    public init(code: Int32, operation: String, message: String) {
        self.code = code
        self.operation = operation
        self.message = message
    }

    public var description: String { "\(operation): \(message)" }

    /// True when libgit2 said the object or reference does not exist.
    public var isNotFound: Bool { code == GIT_ENOTFOUND.rawValue }

    /// Reads `git_error_last()`; call it right after the failing call.
    static func last(_ code: Int32, _ operation: String) -> GitError {
        let message = git_error_last().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "error \(code)"
        return GitError(code: code, operation: operation, message: message)
    }
}

/// Runs a libgit2 call and throws its error.
@discardableResult
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws -> Int32 {
    if code < 0 { throw GitError.last(code, operation()) }
    return code
}

/// libgit2's global state, set up once per process.
public enum Libgit2 {
    private static let initialized: Bool = {
        git_libgit2_init()
        return true
    }()

    static func ensure() { _ = initialized }
}
