import Yams

/// A flat YAML mapping of settings, read strictly: `key: scalar` or `key: [scalar, ...]`, each entry with the line
/// and column it stands at. teal's configuration file is one (its keys are the long option names of a command);
/// what the keys mean is the caller's business.
public enum SettingsFile {
    public enum Value: Sendable, Equatable {
        /// A scalar as written; `plain` is false for a quoted one (`"true"` is text, not a boolean).
        case scalar(String, plain: Bool)
        case list([String])
    }

    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: Value
        public var line: Int
        public var column: Int
    }

    /// The entries of the file in the order they stand, or every problem found, each at path:line:column.
    public static func parse(_ bytes: [UInt8], path: String) -> Result<[Entry], ManifestErrors> {
        let sink = DiagnosticSink()
        let y = StrictYAML(path: path, sink: sink)
        guard let root = y.compose(bytes) else { return .failure(ManifestErrors(sink.items)) }
        guard let map = root.mapping else {
            y.error(root, "the configuration must be a mapping of option names to values (repo: ..., push-notes: true)")
            return .failure(ManifestErrors(sink.items))
        }
        var entries: [Entry] = []
        for (key, value) in map {
            guard let name = key.scalar?.string, !name.isEmpty else {
                y.error(key, "keys must be option names")
                continue
            }
            let mark = key.mark
            if let scalar = value.scalar {
                if StrictYAML.isNull(value) {
                    y.error(value, "\(name) has no value (remove the line to use the default)")
                    continue
                }
                entries.append(Entry(key: name, value: .scalar(scalar.string, plain: scalar.style == .plain),
                                     line: mark?.line ?? 1, column: mark?.column ?? 1))
            } else if let items = value.sequence {
                var values: [String] = []
                for item in items {
                    guard let scalar = item.scalar, !StrictYAML.isNull(item) else {
                        y.error(item, "\(name): each item must be a single value")
                        continue
                    }
                    values.append(scalar.string)
                }
                entries.append(Entry(key: name, value: .list(values), line: mark?.line ?? 1, column: mark?.column ?? 1))
            } else {
                y.error(value, "\(name) must be a value or a list of values, not a mapping")
            }
        }
        guard sink.isEmpty else { return .failure(ManifestErrors(sink.items)) }
        return .success(entries)
    }
}
