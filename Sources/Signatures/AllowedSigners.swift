import Foundation

/// The keys trusted to sign commits, in the allowed_signers format of `ssh-keygen -Y verify` and git's
/// `gpg.ssh.allowedSignersFile`: one key a line,
///
///     principals [options] keytype base64-key [comment]
///
/// with `principals` a comma-separated list (quoted when it holds spaces) and `options` a comma-separated list of
/// `namespaces="git,..."`, `valid-after="YYYYMMDD[HHMM[SS]][Z]"`, `valid-before="..."` (local time unless it
/// ends in `Z`, as in ssh-keygen). `cert-authority` lines are refused: teal verifies plain keys only.
public struct AllowedSigners: Sendable {
    public struct Entry: Sendable {
        public var principals: String
        public var key: SSHPublicKey
        /// Namespace patterns (`*`, `?`, a leading `!` negates); nil allows every namespace.
        public var namespaces: [String]?
        public var validAfter: Date?
        public var validBefore: Date?
        /// Where it was read from.
        public var line: Int
    }

    public var file: String
    public var entries: [Entry]

    /// Reads and parses `file`.
    public init(contentsOf file: String) throws {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw SignatureError.unsupported("cannot read the allowed signers file \(file)")
        }
        try self.init(text: text, file: file)
    }

    public init(text: String, file: String, timeZone: TimeZone = .current) throws {
        self.file = file
        var entries: [Entry] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            do {
                // A key type teal cannot verify with (RSA, security keys) is left out; a signature by it says why.
                if let entry = try Self.parse(trimmed, line: index + 1, timeZone: timeZone) { entries.append(entry) }
            } catch let error as SignatureError {
                if case .allowedSigners = error { throw error }
                throw SignatureError.allowedSigners(file: file, line: index + 1, error.description)
            }
        }
        self.entries = entries
    }

    /// What a signature's key is allowed to do: the entry that lets it sign in `namespace` at every one of
    /// `times`, or an error naming the file, the line and why not.
    public func authorize(_ key: SSHPublicKey, namespace: String, at times: [(what: String, date: Date)]) throws -> Entry {
        let listed = entries.filter { $0.key == key }
        guard !listed.isEmpty else {
            throw SignatureError.badSignature("the \(key.displayType) key \(key.fingerprint) is not in the allowed signers file \(file)")
        }
        var reasons: [String] = []
        for entry in listed {
            if let namespaces = entry.namespaces, !Self.matches(namespace, patterns: namespaces) {
                reasons.append("\(file):\(entry.line) allows it only for namespaces \"\(namespaces.joined(separator: ","))\", not \"\(namespace)\"")
                continue
            }
            let outside = times.compactMap { time -> String? in
                if let after = entry.validAfter, time.date < after {
                    return "\(file):\(entry.line) makes it valid only after \(Self.show(after)), and \(time.what) is \(Self.show(time.date))"
                }
                if let before = entry.validBefore, time.date > before {
                    return "\(file):\(entry.line) makes it valid only before \(Self.show(before)) (expired), and \(time.what) is \(Self.show(time.date))"
                }
                return nil
            }
            if let first = outside.first {
                reasons.append(first)
                continue
            }
            return entry
        }
        throw SignatureError.badSignature("the \(key.displayType) key \(key.fingerprint) (\(listed[0].principals)) may not sign it: "
            + reasons.joined(separator: "; "))
    }

    static func show(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    // MARK: - Parsing

    static func parse(_ line: String, line number: Int, timeZone: TimeZone) throws -> Entry? {
        var rest = Substring(line)
        let principals = try token(&rest)
        guard !principals.isEmpty else { throw SignatureError.malformed("no principals") }
        var field = try token(&rest)
        var options: String?
        if SSHPublicKey.Kind(rawValue: field) == nil && !looksLikeKeyType(field) {
            options = field
            field = try token(&rest)
        }
        let base64 = try token(&rest)
        guard !field.isEmpty, !base64.isEmpty else { throw SignatureError.malformed("expected principals [options] keytype base64-key") }
        let parsedOptions = try options.map(splitOptions) ?? []
        if parsedOptions.contains(where: { $0.0.lowercased() == "cert-authority" }) {
            throw SignatureError.unsupported("cert-authority is not supported: list each signing key itself")
        }
        let key: SSHPublicKey
        do {
            key = try SSHPublicKey(type: field, base64: base64)
        } catch SignatureError.unsupported {
            return nil
        }
        var entry = Entry(principals: principals.replacingOccurrences(of: "\"", with: ""), key: key, line: number)
        for option in parsedOptions {
            let (name, value) = option
            switch name.lowercased() {
            case "namespaces":
                guard let value else { throw SignatureError.malformed("namespaces needs a value, namespaces=\"git\"") }
                entry.namespaces = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            case "valid-after", "valid-before":
                guard let value, let date = parseTime(value, timeZone: timeZone) else {
                    throw SignatureError.malformed("\(name) must be YYYYMMDD[HHMM[SS]] with an optional Z, got \(value ?? "nothing")")
                }
                if name.lowercased() == "valid-after" { entry.validAfter = date } else { entry.validBefore = date }
            default:
                throw SignatureError.unsupported("unknown option '\(name)'")
            }
        }
        return entry
    }

    static func looksLikeKeyType(_ field: String) -> Bool {
        field.hasPrefix("ssh-") || field.hasPrefix("ecdsa-") || field.hasPrefix("sk-") || field.hasPrefix("rsa-")
    }

    /// The next whitespace-separated field; double quotes keep spaces inside one.
    static func token(_ rest: inout Substring) throws -> String {
        rest = rest.drop { $0 == " " || $0 == "\t" }
        var value = ""
        var quoted = false
        while let c = rest.first {
            if c == "\"" { quoted.toggle() }
            if !quoted && (c == " " || c == "\t") { break }
            value.append(c)
            rest = rest.dropFirst()
        }
        if quoted { throw SignatureError.malformed("unterminated quote") }
        return value
    }

    /// `a,b="x,y",c` → [(a, nil), (b, "x,y"), (c, nil)].
    static func splitOptions(_ text: String) throws -> [(String, String?)] {
        var result: [(String, String?)] = []
        var current = ""
        var quoted = false
        func finish() throws {
            guard !current.isEmpty else { throw SignatureError.malformed("an empty option") }
            if let eq = current.firstIndex(of: "=") {
                var value = String(current[current.index(after: eq)...])
                if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                result.append((String(current[..<eq]), value))
            } else {
                result.append((current, nil))
            }
            current = ""
        }
        for c in text {
            if c == "\"" { quoted.toggle() }
            if c == "," && !quoted { try finish() } else { current.append(c) }
        }
        try finish()
        return result
    }

    /// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, local time, or UTC with a trailing `Z` (ssh-keygen's rules).
    static func parseTime(_ text: String, timeZone: TimeZone) -> Date? {
        var digits = text
        var zone = timeZone
        if digits.hasSuffix("Z") || digits.hasSuffix("z") {
            digits.removeLast()
            zone = TimeZone(identifier: "UTC")!
        }
        guard [8, 12, 14].contains(digits.count), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        let n = digits.map { Int(String($0))! }
        func number(_ from: Int, _ count: Int) -> Int { n[from..<from + count].reduce(0) { $0 * 10 + $1 } }
        var parts = DateComponents()
        parts.year = number(0, 4)
        parts.month = number(4, 2)
        parts.day = number(6, 2)
        parts.hour = digits.count >= 12 ? number(8, 2) : 0
        parts.minute = digits.count >= 12 ? number(10, 2) : 0
        parts.second = digits.count == 14 ? number(12, 2) : 0
        guard (1...12).contains(parts.month!), (1...31).contains(parts.day!), parts.hour! < 24, parts.minute! < 60, parts.second! < 61 else {
            return nil
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar.date(from: parts)
    }

    /// OpenSSH's pattern lists: `*` and `?` wildcards, a leading `!` makes a match refuse.
    static func matches(_ name: String, patterns: [String]) -> Bool {
        var matched = false
        for pattern in patterns {
            if pattern.hasPrefix("!") {
                if glob(Array(pattern.dropFirst()), Array(name)) { return false }
            } else if glob(Array(pattern), Array(name)) {
                matched = true
            }
        }
        return matched
    }

    static func glob(_ pattern: [Character], _ name: [Character]) -> Bool {
        guard let first = pattern.first else { return name.isEmpty }
        if first == "*" {
            return (0...name.count).contains { glob(Array(pattern.dropFirst()), Array(name.dropFirst($0))) }
        }
        guard let head = name.first, first == "?" || first == head else { return false }
        return glob(Array(pattern.dropFirst()), Array(name.dropFirst()))
    }
}
