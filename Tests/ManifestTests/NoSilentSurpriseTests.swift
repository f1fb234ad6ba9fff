import Desired
import Foundation
import Git
import TestSupport
import Manifest
import Testing

/// Mistakes in one file that would take an app off the air without a word are refused at validate, with the file,
/// the line and what to write instead.
@Suite struct NoSilentSurpriseTests {
    @Test func removingTrafficYAMLFromAnAppWithColorsIsRefused() {
        var files = goodFiles()
        files["apps/shop/traffic.yaml"] = nil
        let found = diagnostics(files).map(\.description)
        let error = found.first { $0.contains("apps/shop/traffic.yaml is missing") }
        #expect(error?.hasPrefix("apps/shop/environment.yaml:") == true, "got: \(found)")
        #expect(error?.range(of: #"^apps/shop/environment\.yaml:\d+:\d+: "#, options: .regularExpression) != nil, "path:line:column: \(found)")
        #expect(error?.contains("live: none") == true, "the hint names the explicit form")
    }

    @Test(arguments: [("listen: 127.0.0.1:8080\n", "apps/shop/traffic.yaml:1:1: traffic.yaml routes no traffic"),
                      ("listen: 127.0.0.1:8080\nlive:\n", "apps/shop/traffic.yaml:2:"),
                      ("listen: 127.0.0.1:8080\nlive: ~\n", "apps/shop/traffic.yaml:2:")])
    func routingNothingWithoutSayingSoIsRefused(_ traffic: String, _ expected: String) {
        var files = goodFiles()
        files["apps/shop/traffic.yaml"] = traffic
        let found = diagnostics(files).map(\.description)
        #expect(found.contains { $0.hasPrefix(expected) && $0.contains("live: none") }, "got: \(found)")
    }

    @Test func liveNoneRunsTheColorsWithoutTraffic() throws {
        var files = goodFiles()
        files["apps/shop/traffic.yaml"] = "listen: 127.0.0.1:8080\nlive: none\n"
        let state = try load(files).get()
        #expect(state.apps["shop"]?.traffic?.route == Route.none)
        #expect(state.apps["shop"]?.environment.colors.count == 2)
    }
}

/// `restart_on_change: true` makes the app folder's files part of a color's spec: changing app.py restarts it (a
/// new spec commit), changing traffic.yaml does not; without it the spec commit stays.
@Suite struct RestartOnChangeTests {
    @Test func changedFilesMoveTheSpecCommitOnlyWhenAsked() throws {
        let repo = try ScratchRepo()
        defer { repo.cleanup() }
        let environment = goodEnvironment.replacingOccurrences(of: "    env: {LOG_LEVEL: info}", with: "    env: {LOG_LEVEL: info}\n    restart_on_change: true")
        var files = goodFiles()
        files["apps/shop/environment.yaml"] = environment
        for (path, text) in files { try repo.write(path, text) }
        chmod(repo.path + "/apps/shop/bin/server", 0o755)
        let first = try repo.commit("Shop")
        let reader = DesiredStateReader(repository: try Repository(path: repo.path))
        let one = try reader.read(revision: "main").apps["shop"]!
        #expect(one.environment.colors[.blue]?.restartOnChange == true && one.environment.colors[.blue]?.contentDigest != nil)
        #expect(one.environment.colors[.green]?.contentDigest == nil)

        try repo.write("apps/shop/bin/server", "#!/bin/sh\n# fixed\n")
        let fix = try repo.commit("Fix the server script only")
        let two = try reader.read(revision: "main").apps["shop"]!
        #expect(two.specCommits[.blue] == fix, "blue restarts for the changed script")
        #expect(two.specCommits[.green] == first, "green did not ask to")
        #expect(two.environment.colors[.blue]?.contentDigest != one.environment.colors[.blue]?.contentDigest)

        try repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:8080\nlive: green\n")
        try repo.commit("Switch")
        let three = try reader.read(revision: "main").apps["shop"]!
        #expect(three.specCommits[.blue] == fix, "a switch does not restart blue")
    }

    @Test func restartOnChangeMustBeABoolean() {
        var files = goodFiles()
        files["apps/shop/environment.yaml"] = goodEnvironment.replacingOccurrences(of: "    env: {LOG_LEVEL: info}", with: "    env: {LOG_LEVEL: info}\n    restart_on_change: sometimes")
        let found = diagnostics(files).map(\.description)
        #expect(found.contains { $0.hasPrefix("apps/shop/environment.yaml:") && $0.contains("restart_on_change") }, "got: \(found)")
    }
}
