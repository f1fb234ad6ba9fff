import Foundation
import Manifest

/// `env_files`: KEY=VALUE lines on the host, outside git.
public enum EnvFile {
    /// The variables of one file; errors name the file and line, never a value.
    public static func read(_ path: String, app: String, color: ColorName) throws -> [String: String] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw RuntimeError("\(app) \(color): env file \(path) does not exist")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw RuntimeError("\(app) \(color): env file \(path) is not readable UTF-8 text")
        }
        var result: [String: String] = [:]
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (index, raw) in lines.enumerated() {
            var line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst("export ".count)) }
            // The line may hold a secret: errors give its number, never any of its text.
            let malformed = RuntimeError("\(path):\(index + 1): expected KEY=VALUE")
            guard let equals = line.firstIndex(of: "=") else { throw malformed }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard Identifiers.isValidEnvName(key) else { throw malformed }
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let quote = value.first, quote == "\"" || quote == "'", value.last == quote {
                value = String(value.dropFirst().dropLast())
            }
            result[key] = value
        }
        return result
    }
}
