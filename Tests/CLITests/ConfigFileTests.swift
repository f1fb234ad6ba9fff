import Foundation
import Testing
import TestSupport
@testable import TealCLI

/// `--config FILE` and `$TEAL_CONFIG`: YAML keyed by long option names, read by the real binary.
@Suite struct ConfigFileTests {
    /// A repository with two commits under apps/, and a folder for configuration files.
    struct Fixture {
        let repo: ScratchRepo
        let dir: String

        init() throws {
            repo = try ScratchRepo()
            try repo.write("apps/jobs/environment.yaml", "database: sqlite:jobs.db\n")
            try repo.commit("First")
            try repo.write("apps/jobs/notes.txt", "second\n")
            try repo.commit("Second")
            dir = NSTemporaryDirectory() + "teal-config-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }

        func file(_ text: String) throws -> String {
            let path = "\(dir)/teal-\(UUID().uuidString.prefix(6)).yaml"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func cleanup() {
            repo.cleanup()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    @Test func valuesComeFromTheFileAndTheCommandLineWins() throws {
        let fixture = try Fixture()
        defer { fixture.cleanup() }
        let config = try fixture.file("""
            # the agent's settings
            repo: \(fixture.repo.path)
            data-dir: \(fixture.dir)/data
            limit: 1
            interval: 200ms        # a watch option: history leaves it out
            push-notes: false

            """)
        let fromFile = try TealBinary.run(["history", "--config", config])
        #expect(fromFile.status == 0, "\(fromFile.stderr)")
        #expect(fromFile.stdout.split(separator: "\n").count == 1 && fromFile.stdout.contains("Second"), "\(fromFile.stdout)")

        let overridden = try TealBinary.run(["history", "--config", config, "--limit", "5"])
        #expect(overridden.status == 0, "\(overridden.stderr)")
        #expect(overridden.stdout.split(separator: "\n").count == 2, "\(overridden.stdout)")

        // $TEAL_CONFIG names the file when --config does not; --repo on the command line replaces the file's.
        let broken = try fixture.file("repo: \(fixture.dir)/no-such-repo\n")
        let viaEnvironment = try TealBinary.run(["validate"], environment: ["TEAL_CONFIG": broken])
        #expect(viaEnvironment.status == 1 && viaEnvironment.stderr.contains("no-such-repo"), "\(viaEnvironment.stderr)")
        let repoOnCommandLine = try TealBinary.run(["validate", "--repo", fixture.repo.path], environment: ["TEAL_CONFIG": broken])
        #expect(repoOnCommandLine.status == 0, "\(repoOnCommandLine.stderr)")
    }

    @Test func unknownKeysWrongTypesAndBadYAMLNameTheFileAndLine() throws {
        let fixture = try Fixture()
        defer { fixture.cleanup() }
        let unknown = try fixture.file("repo: \(fixture.repo.path)\nbranch: main\ncolour: blue\n")
        let result = try TealBinary.run(["validate", "--config", unknown])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(unknown):3:1: unknown key 'colour'") && result.stderr.contains("ssh-key"), "\(result.stderr)")

        let types = try fixture.file("repo: \(fixture.repo.path)\npush-notes: yes\nbranch: [main, other]\nconfig: other.yaml\n")
        let typed = try TealBinary.run(["validate", "--config", types])
        #expect(typed.status == 1)
        #expect(typed.stderr.contains("\(types):2:1: push-notes is a flag: true or false"), "\(typed.stderr)")
        #expect(typed.stderr.contains("\(types):3:1: branch takes one value, not a list"), "\(typed.stderr)")
        #expect(typed.stderr.contains("\(types):4:1: config cannot be set in the configuration file"), "\(typed.stderr)")

        let secret = try fixture.file("repo: \(fixture.repo.path)\nwebhook-secret: hunter2\n")
        let withSecret = try TealBinary.run(["watch", "--config", secret, "--data-dir", "\(fixture.dir)/data"])
        #expect(withSecret.status == 1)
        #expect(withSecret.stderr.contains("\(secret):2:1: webhook-secret is a secret") && withSecret.stderr.contains("webhook-secret-file"),
                "\(withSecret.stderr)")
        #expect(!withSecret.stderr.contains("hunter2"))

        let malformed = try fixture.file("repo: \(fixture.repo.path)\nhost-key: [SHA256:a\n")
        let bad = try TealBinary.run(["validate", "--config", malformed])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("\(malformed):3:") && bad.stderr.contains("YAML syntax error"), "\(bad.stderr)")

        let missing = try TealBinary.run(["validate", "--config", "\(fixture.dir)/absent.yaml"])
        #expect(missing.status == 1 && missing.stderr.contains("cannot read the configuration file \(fixture.dir)/absent.yaml"),
                "\(missing.stderr)")
    }

    /// The translation is generic over what the command declares: lists become repeated options, flags bare
    /// names, and an option given on the command line is not taken from the file.
    @Test func theFileBecomesTheCommandsOwnArguments() throws {
        let fixture = try Fixture()
        defer { fixture.cleanup() }
        let config = try fixture.file("""
            repo: ssh://git@example.com/desired.git
            host-key: [SHA256:first, SHA256:second]
            push-notes: true
            ssh-agent: false
            interval: 250ms
            branch: production

            """)
        let watch = try ConfigFile.arguments(from: config, for: WatchCommand.self, commandLine: ["--branch", "main"])
        #expect(watch == ["--repo=ssh://git@example.com/desired.git", "--host-key=SHA256:first", "--host-key=SHA256:second",
                          "--push-notes", "--interval=250ms"])
        let history = try ConfigFile.arguments(from: config, for: HistoryCommand.self, commandLine: [])
        #expect(!history.contains("--interval=250ms") && history.contains("--branch=production"), "\(history)")
        let parsed = try WatchCommand.parse(watch + ["--branch", "main"])
        #expect(parsed.repo.hostKey == ["SHA256:first", "SHA256:second"] && parsed.repo.pushNotes && parsed.repo.branch == "main")
        #expect(parsed.interval == "250ms")
    }

    /// The file the systemd unit is installed with is a valid configuration of `teal watch`.
    @Test func theShippedExampleIsValid() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/teal.yaml.example").path
        let arguments = try ConfigFile.arguments(from: example, for: WatchCommand.self, commandLine: [])
        #expect(arguments.contains("--repo=/srv/teal/desired.git") && arguments.contains("--admin=127.0.0.1:9400"), "\(arguments)")
        _ = try WatchCommand.parse(arguments)
        let unit = try String(contentsOfFile: (example as NSString).deletingLastPathComponent + "/teal.service", encoding: .utf8)
        #expect(unit.contains("teal watch --config /etc/teal/teal.yaml"))
    }
}
