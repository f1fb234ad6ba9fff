import Foundation
import Testing
import TestSupport

/// The `teal` binary driven as a user would, against repositories built with the git CLI.
@Suite struct CLITests {
    static let manifests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("manifests").path

    func tempDir() -> String {
        let dir = NSTemporaryDirectory() + "teal-cli-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A repository with the example app committed by the git CLI.
    /// The example app's listen port in these tests: free when first asked for (8080 may be taken on the machine,
    /// and plan refuses a listen address another process holds).
    static let port = freeLoopbackPort()

    /// The example manifests with the listen port replaced by `port`.
    static let portableManifests: String = {
        let dir = NSTemporaryDirectory() + "teal-manifests-\(UUID().uuidString)"
        let source = URL(fileURLWithPath: manifests)
        for file in (try? FileManager.default.subpathsOfDirectory(atPath: source.path)) ?? [] {
            var isDir: ObjCBool = false
            let full = source.appendingPathComponent(file).path
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue,
                  let text = try? String(contentsOfFile: full, encoding: .utf8) else { continue }
            let target = URL(fileURLWithPath: dir).appendingPathComponent(file)
            try? FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? text.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(port)").write(to: target, atomically: true, encoding: .utf8)
        }
        return dir
    }()

    func exampleRepo() throws -> ScratchRepo {
        let scratch = try ScratchRepo()
        let source = URL(fileURLWithPath: Self.portableManifests)
        for file in try FileManager.default.subpathsOfDirectory(atPath: source.path) {
            var isDir: ObjCBool = false
            let full = source.appendingPathComponent(file).path
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue {
                try scratch.write(file, String(contentsOfFile: full, encoding: .utf8))
            }
        }
        try scratch.commit("Example app")
        return scratch
    }

    static let greenColor = """
          green:
            release: "2.0.0"
            command: ["python3", "app.py"]
            schema: 0002_split_name
        """

    @Test func initScaffoldsACommittedRepositoryThatPlansTheFirstDeploy() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let repo = dir + "/desired"
        let initRun = try TealBinary.run(["init", repo, "--from", Self.portableManifests])
        #expect(initRun.status == 0, "\(initRun.stderr)")
        let log = try ScratchRepo.gitOutput(["-C", repo, "log", "--format=%s"])
        #expect(log.contains("Desired state for the example app"))
        #expect(try ScratchRepo.gitOutput(["-C", repo, "status", "--porcelain"]).isEmpty)

        let validate = try TealBinary.run(["validate", "--repo", repo])
        #expect(validate.status == 0, "\(validate.stderr)")
        #expect(validate.stdout.contains("ok: 1 app (shop)"))

        let plan = try TealBinary.run(["plan", "--repo", repo, "--data-dir", dir + "/data"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let lines = plan.stdout.split(separator: "\n").filter { $0.first == " " && $0.contains(". shop:") }.map { String($0.split(separator: ". ", maxSplits: 1)[1]) }
        #expect(lines == ["shop: start migration 0001_create_users", "shop: complete migration 0001_create_users",
                          "shop: start blue (release 1.0.0, schema 0001_create_users, commit \(try headOf(repo).prefix(8)))",
                          "shop: route all traffic to blue"])
        #expect(plan.stdout.contains("because"))
        #expect(try TealBinary.run(["init", repo, "--from", Self.manifests]).status == 1)
    }

    func headOf(_ repo: String) throws -> String {
        try ScratchRepo.gitOutput(["-C", repo, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func validatesAndPlansAtAnyRevisionOfARealHistory() throws {
        let scratch = try exampleRepo()
        defer { scratch.cleanup() }
        let base = try scratch.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        let env = try String(contentsOfFile: scratch.path + "/apps/shop/environment.yaml", encoding: .utf8)
        try scratch.write("apps/shop/environment.yaml", env + Self.greenColor + "\n")
        let deploy = try scratch.commit("Deploy 2.0.0 as green")
        try scratch.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(Self.port)\nlive: green\n")
        let switchCommit = try scratch.commit("Switch to green")
        // A broken commit on a branch.
        try scratch.git("checkout", "-q", "-b", "broken")
        try scratch.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(Self.port)\nlive: green\nweights: {blue: 100}\n")
        try scratch.write("apps/shop/schema/0003_bad.yaml", "operations:\n  - add_colum: {table: users}\n")
        try scratch.commit("Broken")
        try scratch.git("checkout", "-q", "main")
        try scratch.git("revert", "--no-edit", "HEAD")
        let revert = try scratch.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        // An uncommitted edit is never read.
        try scratch.write("apps/shop/traffic.yaml", "this is: [not yaml\n")

        for rev in [base, deploy, switchCommit, revert, "main", "HEAD~1", "main~2"] {
            let r = try TealBinary.run(["validate", "--repo", scratch.path, "--rev", rev])
            #expect(r.status == 0, "\(rev): \(r.stderr)")
        }
        let broken = try TealBinary.run(["validate", "--repo", scratch.path, "--rev", "broken"])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("apps/shop/traffic.yaml:2:7: traffic.yaml has both 'live' and 'weights'"), "\(broken.stderr)")
        #expect(broken.stderr.contains("apps/shop/schema/0003_bad.yaml:2:5: unknown operation 'add_colum'"), "\(broken.stderr)")

        // After the revert, main wants blue live and green running on the new migration.
        let data = scratch.path + "-data"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let plan = try TealBinary.run(["plan", "--repo", scratch.path, "--data-dir", data, "--json"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any]
        let steps = (json?["steps"] as? [[String: Any]]) ?? []
        let kinds = steps.compactMap { ($0["step"] as? [String: Any])?.keys.first }
        #expect(kinds == ["startMigration", "completeMigration", "startMigration", "startColor", "startColor", "route"], "\(kinds)")

        let history = try TealBinary.run(["history", "--repo", scratch.path, "--json"])
        #expect(history.status == 0)
        let entries = try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(entries.compactMap { $0["commit"] as? String } == [revert, switchCommit, deploy, base])
        #expect(entries.first?["subject"] as? String == "Revert \"Switch to green\"")
        #expect(entries.first?["outcome"] == nil)
        try scratch.git("notes", "--ref=teal", "add", "-m", "outcome: applied\nroute all traffic to blue (0.2s)", revert)
        let noted = try TealBinary.run(["history", "--repo", scratch.path])
        #expect(noted.stdout.split(separator: "\n").first?.contains("applied") == true, "\(noted.stdout)")
    }

    @Test func validateRefusesWhatSQLiteCannotExpressAndDryRunsTheMigrations() throws {
        let scratch = try exampleRepo()
        defer { scratch.cleanup() }
        try scratch.write("apps/shop/schema/0003_stamp.yaml", """
            operations:
              - add_column:
                  table: users
                  column: {name: seen_at, type: timestamptz, default: now()}
            """)
        try scratch.commit("A PostgreSQL default")
        let pg = try TealBinary.run(["validate", "--repo", scratch.path])
        #expect(pg.status == 1)
        #expect(pg.stderr.contains("apps/shop/schema/0003_stamp.yaml:4:1: operations[0] (add_column).column.default: now()"), "\(pg.stderr)")
        #expect(pg.stderr.contains("needs PostgreSQL"), "\(pg.stderr)")

        try scratch.write("apps/shop/schema/0003_stamp.yaml", """
            operations:
              - add_column:
                  table: users
                  column: {name: seen_at, type: text, nullable: true}
                  up: upper(nickname)
            """)
        try scratch.commit("An unknown column")
        let bad = try TealBinary.run(["validate", "--repo", scratch.path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("apps/shop/schema/0003_stamp.yaml:5:1: operations[0] (add_column)"), "\(bad.stderr)")
        #expect(bad.stderr.contains("no such column: nickname"), "\(bad.stderr)")

        try scratch.write("apps/shop/schema/0003_stamp.yaml", """
            operations:
              - add_column:
                  table: users
                  column: {name: seen_at, type: text, nullable: true}
                  up: upper(first_name)
            """)
        try scratch.commit("Fixed")
        let good = try TealBinary.run(["validate", "--repo", scratch.path])
        #expect(good.status == 0, "\(good.stderr)")
    }

    @Test func rollbackCommitsARevert() throws {
        let scratch = try exampleRepo()
        defer { scratch.cleanup() }
        try scratch.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:9090\nlive: blue\n")
        let change = try scratch.commit("Move the listen port")
        let r = try TealBinary.run(["rollback", "--repo", scratch.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.git("log", "-1", "--format=%s%n%b").contains("This reverts commit \(change)"))
        #expect(try scratch.git("show", "HEAD:apps/shop/traffic.yaml").contains("127.0.0.1:\(Self.port)"))
        #expect(try scratch.git("status", "--porcelain").isEmpty)
        let bad = try TealBinary.run(["rollback", "--repo", scratch.path, "no-such-commit"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("no-such-commit"))
    }

    @Test func exitStatusesAndHelp() throws {
        for command in ["init", "validate", "plan", "apply", "history", "status", "rollback", "schema", "router", "down"] {
            let help = try TealBinary.run([command, "--help"])
            #expect(help.status == 0, "\(command) --help")
            #expect(help.stdout.contains("USAGE"), "\(command) --help")
        }
        #expect(try TealBinary.run(["validate"]).status == 2)
        #expect(try TealBinary.run(["plan", "--repo", "x", "--bogus"]).status == 2)
        #expect(try TealBinary.run(["no-such-command"]).status == 2)
        let missing = try TealBinary.run(["validate", "--repo", "/nonexistent/repo"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot open repository"))
    }

    @Test func aRefusedPlanExitsOneWithTheReason() throws {
        let scratch = try exampleRepo()
        defer { scratch.cleanup() }
        let data = scratch.path + "-data"
        defer { try? FileManager.default.removeItem(atPath: data) }
        // Three migrations, colors two apart: two would be in flight.
        try scratch.write("apps/shop/schema/0003_add_email.yaml",
                          "operations:\n  - add_column:\n      table: users\n      column: {name: email, type: text, nullable: true}\n")
        let env = try String(contentsOfFile: scratch.path + "/apps/shop/environment.yaml", encoding: .utf8)
        try scratch.write("apps/shop/environment.yaml", env + Self.greenColor.replacingOccurrences(of: "0002_split_name", with: "0003_add_email") + "\n")
        try scratch.commit("Too far ahead")
        let plan = try TealBinary.run(["plan", "--repo", scratch.path, "--data-dir", data])
        #expect(plan.status == 1)
        #expect(plan.stderr.contains("refused"), "\(plan.stderr)")
        #expect(plan.stderr.contains("hint:"))
    }
}

extension ScratchRepo {
    static func gitOutput(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
