import Foundation
import Testing
import TestSupport

/// Commands that only read never create a data dir, a state database or an app database; the agent's
/// environment variables stand in for the options.
@Suite struct ReadOnlyCommandTests {
    @Test func readOnlyCommandsCreateNothing() throws {
        let scratch = try CLITests().exampleRepo()
        defer { scratch.cleanup() }
        let missing = NSTemporaryDirectory() + "teal-missing-\(UUID().uuidString)"

        let status = try TealBinary.run(["status", "--data-dir", missing])
        #expect(status.status == 1)
        #expect(status.stderr.contains("no teal data dir at \(missing)"), "\(status.stderr)")
        let statusJSON = try TealBinary.run(["status", "--json", "--data-dir", missing])
        #expect(statusJSON.status == 1)

        let plan = try TealBinary.run(["plan", "--repo", scratch.path, "--data-dir", missing])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("start migration 0001_create_users"), "\(plan.stdout)")

        let history = try TealBinary.run(["history", "--repo", scratch.path])
        #expect(history.status == 0, "\(history.stderr)")

        let database = "\(missing)/db/shop.db"
        let schema = try TealBinary.run(["schema", "status", "--database", "sqlite://\(database)"])
        #expect(schema.status == 1)
        #expect(schema.stderr.contains("no database at \(database)"), "\(schema.stderr)")

        #expect(!FileManager.default.fileExists(atPath: missing), "a read-only command created \(missing)")
        #expect(!FileManager.default.fileExists(atPath: "\(scratch.path)/.teal"))
    }

    @Test func theEnvironmentNamesTheRepositoryAndTheDataDir() async throws {
        let scratch = try CLITests().exampleRepo()
        defer { scratch.cleanup() }
        let data = scratch.path + "-data"
        defer {
            _ = try? TealBinary.run(["down", "--data-dir", data], timeout: 60)
            try? FileManager.default.removeItem(atPath: data)
        }
        let port = freeLoopbackPort()
        try scratch.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(port)\nlive: blue\n")
        try scratch.commit("A free port")
        let environment = ["TEAL_REPO": scratch.path, "TEAL_DATA_DIR": data]

        let apply = try TealBinary.run(["apply"], environment: environment)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(apply.stdout.contains("outcome: applied"))
        let status = try TealBinary.run(["status", "--json"], environment: environment)
        #expect(status.status == 0, "\(status.stderr)")
        let apps = (try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["apps"] as? [[String: Any]]
        #expect(apps?.first?["name"] as? String == "shop", "\(status.stdout)")
        let plan = try TealBinary.run(["plan"], environment: environment)
        #expect(plan.stdout.contains("nothing to do"), "\(plan.stdout)\(plan.stderr)")
        #expect(try TealBinary.run(["plan"], environment: ["TEAL_REPO": ""]).status == 2)
    }
}
