/// One problem found in a manifest, located at `path:line:column`.
public struct Diagnostic: Error, Hashable, Sendable, CustomStringConvertible {
    /// Path relative to the repository root (or to the directory given to the schema engine).
    public var path: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(path: String, line: Int = 1, column: Int = 1, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(path):\(line):\(column): \(message)" }
}

/// Every problem found in one read of the desired state; thrown when there is at least one.
public struct ManifestErrors: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics.sorted { ($0.path, $0.line, $0.column) < ($1.path, $1.line, $1.column) }
    }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Collects diagnostics while a whole repository is read, so a run reports every error.
final class DiagnosticSink {
    private(set) var items: [Diagnostic] = []

    func add(_ diagnostic: Diagnostic) { items.append(diagnostic) }

    func add(path: String, line: Int = 1, column: Int = 1, _ message: String) {
        items.append(Diagnostic(path: path, line: line, column: column, message: message))
    }

    var isEmpty: Bool { items.isEmpty }
}
