import Yams

/// A strict walker over a composed YAML tree: every read either yields a value or records a
/// diagnostic at the node's line and column. Unknown keys, wrong types and bad values are all
/// reported; reading continues so one run shows every problem.
struct StrictYAML {
    let path: String
    let sink: DiagnosticSink

    /// Decodes bytes as UTF-8 and composes the document; nil (with a diagnostic) on failure.
    func compose(_ bytes: [UInt8]) -> Node? {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            let (line, column) = Self.firstInvalidUTF8(bytes)
            sink.add(path: path, line: line, column: column, "invalid UTF-8")
            return nil
        }
        do {
            guard let node = try Yams.compose(yaml: text) else {
                sink.add(path: path, "the file is empty")
                return nil
            }
            return node
        } catch let error as YamlError {
            let (line, column, message) = Self.describe(error, text: text)
            sink.add(path: path, line: line, column: column, "YAML syntax error: \(message)")
        } catch {
            sink.add(path: path, "YAML syntax error: \(error)")
        }
        return nil
    }

    static func describe(_ error: YamlError, text: String) -> (Int, Int, String) {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let detail = context.map { "\(problem) \($0.text)" } ?? problem
            return (mark.line, mark.column, detail)
        case let .duplicatedKeysInMapping(duplicates, context):
            return (context.mark.line, context.mark.column, "duplicate key \(duplicates.joined(separator: ", "))")
        case let .reader(problem, offset, _, _):
            let prefix = offset.map { Array(text.utf8.prefix($0)) } ?? []
            let line = prefix.filter { $0 == UInt8(ascii: "\n") }.count + 1
            let column = prefix.count - (prefix.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
            return (line, column, problem)
        default:
            return (1, 1, "\(error)")
        }
    }

    static func firstInvalidUTF8(_ bytes: [UInt8]) -> (Int, Int) {
        var line = 1, column = 1, index = 0
        while index < bytes.count {
            let b = bytes[index]
            let length: Int
            switch b {
            case 0x00...0x7F: length = 1
            case 0xC2...0xDF: length = 2
            case 0xE0...0xEF: length = 3
            case 0xF0...0xF4: length = 4
            default: return (line, column)
            }
            guard index + length <= bytes.count,
                  String(validating: bytes[index..<index + length], as: UTF8.self) != nil
            else { return (line, column) }
            if b == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
            index += length
        }
        return (line, column)
    }

    /// A plain null scalar: empty, `~` or `null`.
    static func isNull(_ node: Node) -> Bool {
        guard let scalar = node.scalar, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    func error(_ node: Node?, _ message: String) {
        let mark = node?.mark
        sink.add(path: path, line: mark?.line ?? 1, column: mark?.column ?? 1, message)
    }

    /// A mapping with only `allowed` keys and all of `required`; keys are reported where they stand.
    func mapping(_ node: Node, _ what: String, allowed: [String], required: [String] = []) -> [String: Node]? {
        guard let map = node.mapping else {
            error(node, "\(what) must be a mapping")
            return nil
        }
        var result: [String: Node] = [:]
        for (key, value) in map {
            guard let name = key.scalar?.string else {
                error(key, "\(what): keys must be plain strings")
                continue
            }
            if allowed.contains(name) {
                result[name] = value
            } else {
                error(key, "unknown key '\(name)' in \(what) (expected one of: \(allowed.joined(separator: ", ")))")
            }
        }
        for name in required where result[name] == nil {
            error(node, "\(what) is missing required key '\(name)'")
        }
        return result
    }

    /// A scalar read as text; numbers and booleans are accepted as their spelling (`release: 1.5`).
    func string(_ node: Node, _ what: String, allowEmpty: Bool = false) -> String? {
        guard let scalar = node.scalar else {
            error(node, "\(what) must be a string, not a \(node.mapping != nil ? "mapping" : "list")")
            return nil
        }
        if Self.isNull(node) {
            error(node, "\(what) must be a string, not null")
            return nil
        }
        if !allowEmpty && scalar.string.isEmpty {
            error(node, "\(what) must not be empty")
            return nil
        }
        return scalar.string
    }

    func int(_ node: Node, _ what: String) -> Int? {
        guard let scalar = node.scalar, scalar.style == .plain, let value = Int(scalar.string) else {
            error(node, "\(what) must be an integer")
            return nil
        }
        return value
    }

    func bool(_ node: Node, _ what: String) -> Bool? {
        guard let scalar = node.scalar, scalar.style == .plain else {
            error(node, "\(what) must be true or false")
            return nil
        }
        switch scalar.string {
        case "true": return true
        case "false": return false
        default:
            error(node, "\(what) must be true or false, got '\(scalar.string)'")
            return nil
        }
    }

    func duration(_ node: Node, _ what: String) -> Duration? {
        guard let text = string(node, what) else { return nil }
        guard let value = DurationParser.parse(text) else {
            error(node, "\(what): '\(text)' is not a duration (use a whole number with ms, s, m, h or d, e.g. 500ms, 2s, 7d)")
            return nil
        }
        return value
    }

    func list(_ node: Node, _ what: String) -> [Node]? {
        guard let seq = node.sequence else {
            error(node, "\(what) must be a list")
            return nil
        }
        return Array(seq)
    }

    func stringList(_ node: Node, _ what: String) -> [String]? {
        guard let items = list(node, what) else { return nil }
        let values = items.enumerated().compactMap { string($1, "\(what)[\($0)]") }
        return values.count == items.count ? values : nil
    }

    func stringMap(_ node: Node, _ what: String) -> [String: String]? {
        guard let map = node.mapping else {
            error(node, "\(what) must be a mapping")
            return nil
        }
        var result: [String: String] = [:]
        var ok = true
        for (key, value) in map {
            guard let name = key.scalar?.string else { error(key, "\(what): keys must be strings"); ok = false; continue }
            guard let text = string(value, "\(what).\(name)", allowEmpty: true) else { ok = false; continue }
            result[name] = text
        }
        return ok ? result : nil
    }

    /// A table, column or index name: `[A-Za-z_][A-Za-z0-9_]*`.
    func identifier(_ node: Node, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        guard Identifiers.isValidSQLIdentifier(text) else {
            error(node, "\(what) '\(text)' is not a valid SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 characters)")
            return nil
        }
        if text.lowercased().hasPrefix("_teal") {
            error(node, "\(what) '\(text)': names starting with _teal are reserved for teal")
            return nil
        }
        return text
    }
}
