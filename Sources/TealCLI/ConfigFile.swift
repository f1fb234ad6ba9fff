import ArgumentParser
import Foundation
import Manifest

/// teal's configuration file (`--config FILE`, else `$TEAL_CONFIG`): YAML whose keys are the long option names of
/// the commands that read the desired-state repository, so the systemd unit can say `teal watch --config
/// /etc/teal/teal.yaml` and the operator's `teal history --config /etc/teal/teal.yaml` reads the same repository
/// with the same credentials:
///
///     repo: ssh://git@github.com/acme/desired.git
///     ssh-key: /etc/teal/deploy_key
///     host-key: [SHA256:abc..., SHA256:def...]
///     push-notes: true
///
/// The file is turned into arguments before the command line is parsed, from the options the command itself
/// declares, so an option added to a command later can be set in the file with no more code. A flag takes true or
/// false; an option that repeats takes a list (or one value); any other option takes one value. The command line
/// wins: an option given there is not taken from the file. One file serves every such command: a key that is an
/// option of another of them (`interval` for `watch`, read by `history` too) is left out of the commands that lack
/// it, and a key that is an option of none is an error. Errors name the file, line and column.
enum ConfigFile {
    /// The commands that read it.
    static let commands: [any ParsableCommand.Type] = [
        WatchCommand.self, ApplyCommand.self, PlanCommand.self, ValidateCommand.self, HistoryCommand.self,
    ]

    /// Options that belong on the command line only.
    static let excluded: Set<String> = ["config", "help", "version", "experimental-dump-help"]
    /// Secrets given inline on the command line, and the option that reads them from a file instead.
    static let secretsByFile: [String: String] = ["webhook-secret": "webhook-secret-file"]

    /// An option as the command declares it.
    struct Declared {
        var names: [String]
        var isFlag: Bool
        var isRepeating: Bool
        /// The long name, without dashes, that the file uses.
        var key: String
    }

    /// `arguments` (without the executable) with the configuration file's settings inserted after the subcommand
    /// name, when the subcommand is one that reads the file and a file is named; unchanged otherwise.
    static func expand(_ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String] {
        guard let name = arguments.first,
              let command = commands.first(where: { $0.configuration.commandName == name }) else { return arguments }
        let rest = Array(arguments.dropFirst())
        let terminator = rest.firstIndex(of: "--") ?? rest.endIndex
        let given = Array(rest[..<terminator])
        var path: String?
        for (index, argument) in given.enumerated() {
            if argument == "--config", index + 1 < given.count { path = given[index + 1] }
            if argument.hasPrefix("--config=") { path = String(argument.dropFirst("--config=".count)) }
        }
        guard let path = path ?? environment["TEAL_CONFIG"].flatMap({ $0.isEmpty ? nil : $0 }) else { return arguments }
        let settings = try self.arguments(from: path, for: command, commandLine: given)
        return [name] + settings + rest
    }

    /// The arguments the file at `path` gives `command`, leaving out options already on `commandLine`.
    static func arguments(from path: String, for command: any ParsableCommand.Type, commandLine: [String]) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("cannot read the configuration file \(path)")
        }
        let entries: [SettingsFile.Entry]
        switch SettingsFile.parse(Array(data), path: path) {
        case .success(let parsed): entries = parsed
        case .failure(let errors): throw CLIError("invalid configuration file:\n\(errors.description)")
        }
        let own = declared(command)
        let others = Set(commands.flatMap { declared($0).map(\.key) })
        var problems: [String] = []
        var result: [String] = []
        for entry in entries {
            let at = "\(path):\(entry.line):\(entry.column)"
            if excluded.contains(entry.key) {
                problems.append("\(at): \(entry.key) cannot be set in the configuration file")
                continue
            }
            if let file = secretsByFile[entry.key] {
                problems.append("\(at): \(entry.key) is a secret: keep it out of the configuration file and name a file holding it with \(file)")
                continue
            }
            guard let option = own.first(where: { $0.key == entry.key }) else {
                if !others.contains(entry.key) {
                    let known = others.subtracting(excluded).sorted()
                    problems.append("\(at): unknown key '\(entry.key)' (the keys are long option names: \(known.joined(separator: ", ")))")
                }
                continue
            }
            if option.names.contains(where: { name in commandLine.contains { $0 == name || $0.hasPrefix(name + "=") } }) { continue }
            switch (option.isFlag, entry.value) {
            case (true, .scalar(let text, plain: true)) where text == "true":
                result.append("--\(option.key)")
            case (true, .scalar(let text, plain: true)) where text == "false":
                if own.contains(where: { $0.names.contains("--no-\(option.key)") }) { result.append("--no-\(option.key)") }
            case (true, _):
                problems.append("\(at): \(entry.key) is a flag: true or false")
            case (false, .scalar(let text, _)):
                result.append("--\(option.key)=\(text)")
            case (false, .list(let values)) where option.isRepeating:
                result += values.map { "--\(option.key)=\($0)" }
            case (false, .list):
                problems.append("\(at): \(entry.key) takes one value, not a list")
            }
        }
        guard problems.isEmpty else { throw CLIError("invalid configuration file:\n" + problems.joined(separator: "\n")) }
        return result
    }

    /// The named options and flags `command` declares, read from argument-parser's description of the command.
    static func declared(_ command: any ParsableCommand.Type) -> [Declared] {
        guard let json = try? JSONSerialization.jsonObject(with: Data(command._dumpHelp().utf8)) as? [String: Any],
              let info = json["command"] as? [String: Any], let arguments = info["arguments"] as? [[String: Any]] else { return [] }
        return arguments.compactMap { argument in
            guard let kind = argument["kind"] as? String, kind != "positional",
                  let names = argument["names"] as? [[String: Any]] else { return nil }
            let spelled = names.compactMap { name -> String? in
                guard let text = name["name"] as? String, let kind = name["kind"] as? String else { return nil }
                return kind == "short" ? "-\(text)" : kind == "longWithSingleDash" ? "-\(text)" : "--\(text)"
            }
            guard let long = names.first(where: { $0["kind"] as? String == "long" })?["name"] as? String, !excluded.contains(long) else {
                return nil
            }
            return Declared(names: spelled, isFlag: kind == "flag", isRepeating: argument["isRepeating"] as? Bool ?? false, key: long)
        }
    }
}
