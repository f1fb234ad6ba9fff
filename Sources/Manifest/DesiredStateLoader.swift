/// Reads and validates the whole desired state of one commit, reporting every problem.
public enum DesiredStateLoader {
    public static func load(tree: ManifestTree, commit: String) -> Result<DesiredState, ManifestErrors> {
        let sink = DiagnosticSink()
        var apps: [String: AppManifest] = [:]
        do {
            guard let entries = try tree.entries(of: "apps") else {
                sink.add(path: "apps", "no apps/ folder at this commit")
                return .failure(ManifestErrors(sink.items))
            }
            for entry in entries.sorted(by: { $0.name < $1.name }) where !entry.name.hasPrefix(".") {
                let path = "apps/\(entry.name)"
                guard entry.isDirectory else {
                    sink.add(path: path, "only app folders belong in apps/")
                    continue
                }
                guard Identifiers.isValidAppName(entry.name) else {
                    sink.add(path: path, "app name '\(entry.name)' must match [a-z][a-z0-9-]* (at most 63 characters)")
                    continue
                }
                if let app = try loadApp(entry.name, tree: tree, sink: sink) { apps[entry.name] = app }
            }
        } catch {
            sink.add(path: "apps", "cannot read the commit's tree: \(error)")
        }
        checkAcrossApps(apps, sink: sink)
        guard sink.isEmpty else { return .failure(ManifestErrors(sink.items)) }
        var state = DesiredState(commit: commit, apps: apps)
        for name in state.apps.keys {
            for color in state.apps[name]!.environment.colors.keys { state.apps[name]!.specCommits[color] = commit }
        }
        return .success(state)
    }

    /// Parses only an app's environment.yaml (used when walking history for spec commits); nil on any error.
    public static func environment(tree: ManifestTree, app: String) -> EnvironmentManifest? {
        let path = "apps/\(app)/environment.yaml"
        guard let bytes = try? tree.contents(of: path) else { return nil }
        return EnvironmentParser.parse(bytes, path: path, app: app, sink: DiagnosticSink())?.0
    }

    /// Parses one environment.yaml on its own (`teal schema --environment`), reporting every problem by line.
    public static func environment(bytes: [UInt8], path: String, app: String) -> Result<EnvironmentManifest, ManifestErrors> {
        let sink = DiagnosticSink()
        guard let (manifest, _) = EnvironmentParser.parse(bytes, path: path, app: app, sink: sink), sink.isEmpty else {
            return .failure(ManifestErrors(sink.items))
        }
        return .success(manifest)
    }

    static func loadApp(_ name: String, tree: ManifestTree, sink: DiagnosticSink) throws -> AppManifest? {
        let folder = "apps/\(name)"
        let envPath = "\(folder)/environment.yaml"
        let trafficPath = "\(folder)/traffic.yaml"
        let before = sink.items.count

        var environment: (EnvironmentManifest, EnvironmentParser.Marks)?
        if let bytes = try tree.contents(of: envPath) {
            environment = EnvironmentParser.parse(bytes, path: envPath, app: name, sink: sink)
        } else {
            sink.add(path: envPath, "missing: every app needs an environment.yaml")
        }
        var traffic: (TrafficManifest, TrafficParser.Marks)?
        if let bytes = try tree.contents(of: trafficPath) {
            traffic = TrafficParser.parse(bytes, path: trafficPath, sink: sink)
        }
        let migrations = try loadMigrations(folder: folder, tree: tree, sink: sink)

        if let (env, marks) = environment {
            let y = StrictYAML(path: envPath, sink: sink)
            for (color, spec) in env.colors.sorted(by: { $0.key < $1.key }) {
                if !migrations.contains(where: { $0.name == spec.schema }) {
                    let known = migrations.map(\.name)
                    y.error(marks.colorSchema[color], "colors.\(color).schema '\(spec.schema)' names no migration in \(folder)/schema/"
                        + (known.isEmpty ? " (there are none)" : " (known: \(known.joined(separator: ", ")))"))
                }
                if let commandNode = marks.colorCommand[color] {
                    try checkCommand(spec.command, color: color, folder: folder, tree: tree, node: commandNode, y: y)
                }
            }
            if traffic == nil, sink.items.count == before, let first = env.colors.keys.sorted().first, let node = marks.colorCommand[first] {
                // Without traffic.yaml an app's colors would run unrouted: removing the file must not take the app off the air silently.
                y.error(node, "colors are declared but \(trafficPath) is missing; an app with colors needs a traffic.yaml "
                    + "(write `live: none` in it to run them without traffic)")
            }
            if let (t, tmarks) = traffic {
                let ty = StrictYAML(path: trafficPath, sink: sink)
                for (color, node) in tmarks.colors where env.colors[color] == nil {
                    ty.error(node, "\(color) gets traffic but is not declared in environment.yaml")
                }
                _ = t
            }
        }
        guard sink.items.count == before, let (env, _) = environment else { return nil }
        return AppManifest(name: name, environment: env, traffic: traffic?.0, migrations: migrations)
    }

    static func loadMigrations(folder: String, tree: ManifestTree, sink: DiagnosticSink) throws -> [Migration] {
        guard let entries = try tree.entries(of: "\(folder)/schema") else { return [] }
        var byNumber: [Int: String] = [:]
        var migrations: [Migration] = []
        for entry in entries.sorted(by: { $0.name < $1.name }) where !entry.name.hasPrefix(".") {
            let path = "\(folder)/schema/\(entry.name)"
            guard !entry.isDirectory else {
                sink.add(path: path, "schema/ holds only migration files NNNN_name.yaml (or NNNN_name.json)")
                continue
            }
            guard let bytes = try tree.contents(of: path), let checksum = try tree.contentID(of: path) else { continue }
            guard let migration = MigrationParser.parse(bytes, fileName: entry.name, path: path, checksum: checksum, sink: sink) else {
                continue
            }
            if let other = byNumber[migration.number] {
                sink.add(path: path, "migration number \(String(format: "%04d", migration.number)) is also used by \(other)")
                continue
            }
            byNumber[migration.number] = entry.name
            migrations.append(migration)
        }
        return migrations.sorted { $0.number < $1.number }
    }

    /// A relative command (or argument) path must resolve inside the app folder; argv[0] must exist there.
    static func checkCommand(_ command: [String], color: ColorName, folder: String, tree: ManifestTree, node: Node, y: StrictYAML) throws {
        for (index, arg) in command.enumerated() where arg.contains("/") && !arg.hasPrefix("/") {
            var depth = 0
            var escapes = false
            for part in arg.split(separator: "/") {
                if part == ".." { depth -= 1 } else if part != "." { depth += 1 }
                if depth < 0 { escapes = true }
            }
            if escapes {
                y.error(node, "colors.\(color).command[\(index)] '\(arg)' leaves the app folder \(folder)")
                continue
            }
            if index == 0 {
                let normalized = arg.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
                if try tree.contents(of: "\(folder)/\(normalized)") == nil {
                    y.error(node, "colors.\(color).command[0] '\(arg)' is not a file in \(folder) at this commit")
                }
            }
        }
        if let first = command.first, !first.contains("/"), first == ".." || first == "." {
            y.error(node, "colors.\(color).command[0] '\(first)' is not a program")
        }
    }

    static func checkAcrossApps(_ apps: [String: AppManifest], sink: DiagnosticSink) {
        var databases: [DatabaseLocation: String] = [:]
        var listens: [ListenAddress: String] = [:]
        for (name, app) in apps.sorted(by: { $0.key < $1.key }) {
            if let other = databases[app.environment.database] {
                sink.add(path: "apps/\(name)/environment.yaml",
                         "database \(app.environment.database) is also used by app '\(other)'; each app needs its own database")
            } else {
                databases[app.environment.database] = name
            }
            if let listen = app.traffic?.listen {
                if let other = listens[listen] {
                    sink.add(path: "apps/\(name)/traffic.yaml", "listen \(listen) is also used by app '\(other)'")
                } else {
                    listens[listen] = name
                }
            }
        }
    }
}

import Yams
