import Foundation
import Testing
import TestSupport

/// The seed story on PostgreSQL: the real agent, router and Python colors (psycopg) sharing one database that
/// the test's own cluster serves.
@Suite(.serialized) struct PostgresEndToEndTests {
    /// The shared test cluster, when it and Python's psycopg (for the colors) are here; otherwise records why.
    static func clusterWithPsycopg() -> PostgresCluster? {
        let cluster: PostgresCluster
        do { cluster = try PostgresCluster.get() } catch {
            Issue.record("PostgreSQL is needed for this test: \(error)")
            return nil
        }
        guard (try? runTool(["/usr/bin/python3", "-c", "import psycopg"])) != nil else {
            Issue.record("python3-psycopg is needed for this test (apt-get install python3-psycopg)")
            return nil
        }
        return cluster
    }

    @Test(.timeLimit(.minutes(6)))
    func deploySwitchRevertAndRedeployOnPostgres() async throws {
        guard let cluster = Self.clusterWithPsycopg() else { return }
        let database = try cluster.createDatabase("shop")
        let story = try Story()
        defer { story.cleanup() }
        let url = cluster.url(database)
        try story.repo.write("apps/shop/environment.yaml",
                             try story.environment().replacingOccurrences(of: "database: sqlite:shop.db", with: "database: \(url)"))
        try story.repo.write("apps/shop/schema/0001_create_users.yaml", PostgresFixtures.createUsers)
        try story.repo.write("apps/shop/schema/0002_split_name.yaml", PostgresFixtures.splitName)
        try story.repo.commit("The shop on PostgreSQL")
        let admin = freeLoopbackPort()
        // The colors run Debian's python3, which has psycopg (python3-psycopg).
        let path = "/usr/bin:/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "")
        let agent = try Agent(story: story, admin: admin, environment: ["PGPASSFILE": cluster.passFile, "PATH": path])
        defer { agent.kill9() }

        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")
        for name in ["Ada Lovelace", "Alan Turing", "Edsger Dijkstra"] {
            #expect(await HTTP.request(story.base + "/users", method: "POST", json: ["name": name])?.status == 201)
        }
        #expect(!agent.output.contains(cluster.password), "the password is never logged")

        // Deploy green on the split-name migration: both shapes live on one database.
        try story.repo.write("apps/shop/environment.yaml", try story.environment() + greenColor + "\n")
        let deploy = try story.repo.commit("Deploy 2.0.0 as green")
        let deployNote = await story.waitForNote(deploy)
        #expect(deployNote?.hasPrefix("outcome: applied") == true, "\(deployNote ?? agent.output)")
        #expect(await story.servedBy() == "blue")

        // Writes under load through the switch and its revert: first blue's shape, then green's, then blue's.
        let failures = Counter(), writes = Counter(), stop = Flag()
        let base = story.base
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<3 {
                    group.addTask {
                        var i = 0
                        while !stop.isSet {
                            i += 1
                            let reply = await HTTP.request(base + "/users", method: "POST",
                                                           json: ["first_name": "W\(worker)n\(i)", "last_name": "Load", "name": "W\(worker)n\(i) Load"])
                            if reply?.status == 201 { writes.add() } else { failures.add() }
                        }
                    }
                }
            }
        }
        try await Task.sleep(nanoseconds: 500_000_000)
        try story.repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: green\n")
        let switchCommit = try story.repo.commit("Switch to green")
        #expect(await HTTP.eventually(timeout: 30) { await story.servedBy() == "green" })
        try await Task.sleep(nanoseconds: 1_000_000_000)
        let viaGreen = await story.users()
        #expect(viaGreen.contains { $0["first_name"] as? String == "Alan" && $0["last_name"] as? String == "Turing" }, "\(viaGreen.prefix(3))")
        try story.repo.git("revert", "--no-edit", "HEAD")
        let revertSwitch = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(await HTTP.eventually(timeout: 30, every: 0.02) { await story.servedBy() == "blue" })
        try await Task.sleep(nanoseconds: 1_000_000_000)
        stop.set()
        await load.value
        #expect(failures.value == 0, "\(failures.value) failed writes under load")
        #expect(writes.value > 10, "\(writes.value) writes")

        // Every row, whichever shape wrote it, is readable by blue in its own shape.
        let viaBlue = await story.users()
        let names = Set(viaBlue.compactMap { $0["name"] as? String })
        #expect(viaBlue.count == 3 + writes.value, "blue reads \(viaBlue.count) rows of \(3 + writes.value)")
        for expected in ["Ada Lovelace", "Alan Turing", "W0n1 Load"] { #expect(names.contains(expected), "\(expected)") }
        #expect(viaBlue.allSatisfy { ($0["name"] as? String)?.isEmpty == false }, "no row lost its name")

        // Revert the deploy: green stops and the migration rolls back, keeping every row.
        try story.repo.git("revert", "--no-edit", deploy)
        let revertDeploy = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        let rollbackNote = await story.waitForNote(revertDeploy)
        #expect(rollbackNote?.hasPrefix("outcome: applied") == true, "\(rollbackNote ?? agent.output)")
        #expect(rollbackNote?.contains("roll back migration 0002_split_name") == true, "\(rollbackNote ?? "")")
        #expect(try cluster.psql(database, "SELECT state FROM teal.migrations WHERE name = '0002_split_name'") == "rolled_back")
        #expect(await story.users().count == 3 + writes.value)
        #expect(await HTTP.request(story.base + "/users", method: "POST", json: ["name": "Grace Hopper"])?.status == 201)

        // Deploy again: the migration starts again and green sees every row, including the one written meanwhile.
        try story.repo.git("revert", "--no-edit", "HEAD")
        let redeploy = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        let redeployNote = await story.waitForNote(redeploy)
        #expect(redeployNote?.hasPrefix("outcome: applied") == true, "\(redeployNote ?? agent.output)")
        let rows = try cluster.psql(database, "SELECT first_name || ' ' || last_name FROM users WHERE first_name = 'Grace'",
                                    options: "-c search_path=public_0002_split_name -c teal.shape=0002_split_name")
        #expect(rows == "Grace Hopper", "green's shape has the row blue wrote after the rollback: \(rows)")
        for commit in [deploy, switchCommit, revertSwitch, revertDeploy, redeploy] {
            #expect(story.note(commit)?.hasPrefix("outcome: applied") == true, "\(commit): \(story.note(commit) ?? "no note")")
        }
        #expect(!agent.output.contains(cluster.password), "the password is never logged")
    }

    /// Finish a deploy (blue removed: the migration completes), let green write, then `git revert` the finish
    /// within the retention window: the complete is undone, blue comes back on the old shape and reads what green
    /// wrote after the complete.
    @Test(.timeLimit(.minutes(6)))
    func aRevertOfTheFinishBringsBlueBackOnPostgres() async throws {
        guard let cluster = Self.clusterWithPsycopg() else { return }
        let database = try cluster.createDatabase("shop")
        let story = try Story()
        defer { story.cleanup() }
        let blueOnly = try story.environment().replacingOccurrences(of: "database: sqlite:shop.db", with: "database: \(cluster.url(database))")
        try story.repo.write("apps/shop/environment.yaml", blueOnly)
        try story.repo.write("apps/shop/schema/0001_create_users.yaml", PostgresFixtures.createUsers)
        try story.repo.write("apps/shop/schema/0002_split_name.yaml", PostgresFixtures.splitName)
        try story.repo.commit("The shop on PostgreSQL")
        let path = "/usr/bin:/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "")
        let agent = try Agent(story: story, admin: freeLoopbackPort(), environment: ["PGPASSFILE": cluster.passFile, "PATH": path])
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")
        #expect(await HTTP.request(story.base + "/users", method: "POST", json: ["name": "Ada Lovelace"])?.status == 201)

        // Deploy and switch in one commit, then finish: blue goes, the migration completes.
        try story.repo.write("apps/shop/environment.yaml", blueOnly + greenColor + "\n")
        try story.repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: green\n")
        let deploy = try story.repo.commit("Deploy 2.0.0 as green and switch to it")
        #expect(await story.waitForNote(deploy)?.hasPrefix("outcome: applied") == true, "\(agent.output)")
        guard let blueBlock = blueOnly.range(of: "  blue:\n") else { Issue.record("no blue in \(blueOnly)"); return }
        try story.repo.write("apps/shop/environment.yaml", String(blueOnly[..<blueBlock.lowerBound]) + greenColor + "\n")
        let finish = try story.repo.commit("Finish: only green")
        let finishNote = await story.waitForNote(finish)
        #expect(finishNote?.contains("complete migration 0002_split_name") == true, "\(finishNote ?? agent.output)")
        #expect(try cluster.psql(database, "SELECT state FROM teal.migrations WHERE name = '0002_split_name'") == "completed")

        // Green writes after the complete: a new row, and a change to an old one.
        #expect(await HTTP.request(story.base + "/users", method: "POST", json: ["first_name": "Grace", "last_name": "Hopper"])?.status == 201)
        _ = try cluster.psql(database, "UPDATE users SET last_name = 'Byron' WHERE first_name = 'Ada'",
                             options: "-c search_path=public_0002_split_name -c teal.shape=0002_split_name")

        // Revert the finish: the complete is undone and blue starts again on its shape.
        try story.repo.git("revert", "--no-edit", "HEAD")
        let revert = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        let revertNote = await story.waitForNote(revert)
        #expect(revertNote?.hasPrefix("outcome: applied") == true, "\(revertNote ?? agent.output)")
        #expect(revertNote?.contains("reopen migration 0002_split_name") == true, "\(revertNote ?? "")")
        #expect(try cluster.psql(database, "SELECT state FROM teal.migrations WHERE name = '0002_split_name'") == "started")
        #expect(await story.servedBy() == "green", "traffic stays where traffic.yaml says")

        // Traffic back to blue: it reads every row in its own shape, green's included.
        try story.repo.write("apps/shop/traffic.yaml", "listen: 127.0.0.1:\(story.port)\nlive: blue\n")
        let back = try story.repo.commit("Back to blue")
        #expect(await story.waitForNote(back)?.hasPrefix("outcome: applied") == true, "\(agent.output)")
        #expect(await story.servedBy() == "blue")
        let names = Set(await story.users().compactMap { $0["name"] as? String })
        #expect(names == ["Ada Byron", "Grace Hopper"], "\(names)")
        #expect(!agent.output.contains(cluster.password), "the password is never logged")
    }

    /// The crash test of the SQLite story on PostgreSQL: `teal apply` exits hard before each of a deploy's five
    /// steps in turn; the next apply converges without repeating a finished step and no row is lost.
    @Test(.timeLimit(.minutes(10)))
    func crashAtEveryStepBoundaryConvergesOnPostgres() async throws {
        let cluster: PostgresCluster
        do { cluster = try PostgresCluster.get() } catch {
            Issue.record("PostgreSQL is needed for this test: \(error)")
            return
        }
        let path = "/usr/bin:/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "")
        let environment = ["PGPASSFILE": cluster.passFile, "PATH": path]
        var boundary = 1
        while true {
            let database = try cluster.createDatabase("crash")
            let story = try Story()
            defer { story.cleanup() }
            try story.repo.write("apps/shop/environment.yaml",
                                 try story.environment().replacingOccurrences(of: "database: sqlite:shop.db", with: "database: \(cluster.url(database))"))
            try story.repo.write("apps/shop/schema/0001_create_users.yaml", PostgresFixtures.createUsers)
            try story.repo.write("apps/shop/schema/0002_split_name.yaml", PostgresFixtures.splitName)
            try story.repo.commit("The shop on PostgreSQL")
            let apply = ["apply", "--repo", story.repo.path, "--data-dir", story.data]
            let first = try TealBinary.run(apply, environment: environment)
            #expect(first.status == 0, "\(first.stderr)")
            for name in ["Ada Lovelace", "Alan Turing"] {
                #expect(await HTTP.request(story.base + "/users", method: "POST", json: ["name": name])?.status == 201)
            }
            try story.commitDeploySwitchAndFinish()

            let plan = try TealBinary.run(["plan", "--repo", story.repo.path, "--data-dir", story.data, "--json"], environment: environment)
            let total = ((try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])?["steps"] as? [Any])?.count ?? 0
            #expect(total == 5, "\(plan.stdout)\(plan.stderr)")
            if boundary > total || total == 0 { break }

            let crashed = try TealBinary.run(apply, environment: environment.merging(["TEAL_CRASH_BEFORE_STEP": "\(boundary)"]) { $1 })
            #expect(crashed.status == 137, "boundary \(boundary): \(crashed.stderr)")
            #expect(await story.servedBy() != nil, "boundary \(boundary): traffic is served while the agent is down")

            let resumed = try TealBinary.run(apply, environment: environment)
            #expect(resumed.status == 0, "boundary \(boundary): \(resumed.stderr)")
            let ran = resumed.stdout.components(separatedBy: "  → ").count - 1
            #expect(ran == total - (boundary - 1), "boundary \(boundary): resumed with \(ran) steps:\n\(resumed.stdout)")
            #expect(await story.servedBy() == "green", "boundary \(boundary)")
            let users = await story.users()
            #expect(Set(users.compactMap { $0["last_name"] as? String }) == ["Lovelace", "Turing"], "boundary \(boundary): \(users)")
            #expect(try cluster.psql(database, "SELECT state FROM teal.migrations WHERE name = '0002_split_name'") == "completed",
                    "boundary \(boundary)")
            let again = try TealBinary.run(apply, environment: environment)
            #expect(again.stdout.contains("nothing to do"), "boundary \(boundary): \(again.stdout)")
            boundary += 1
        }
        #expect(boundary == 6)
    }
}
