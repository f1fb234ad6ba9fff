import Foundation
import GRDB
import Testing
import TestSupport

/// A revert pushed while a deploy's backfill runs: the agent stops the backfill within a batch instead of
/// finishing it, rolls the migration back, and blue serves every row throughout.
@Suite(.serialized) struct RevertDuringBackfillTests {
    @Test(.timeLimit(.minutes(5)))
    func aRevertStopsTheRunningBackfillAndRollsItBack() async throws {
        let story = try Story()
        defer { story.cleanup() }
        let agent = try Agent(story: story, admin: freeLoopbackPort())
        defer { agent.kill9() }
        #expect(await HTTP.eventually(timeout: 90) { await story.servedBy() == "blue" }, "\(agent.output)")

        // Enough rows that the backfill takes seconds.
        let database = try DatabaseQueue(path: story.data + "/shop.db")
        let rows = 1_000_000
        try await database.write { db in
            try db.execute(sql: """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(rows))
                INSERT INTO users (name) SELECT 'User ' || i FROM n
                """)
        }
        let before = try await database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM users") ?? 0 }

        try story.repo.write("apps/shop/environment.yaml", try story.environment() + greenColor + "\n")
        let deploy = try story.repo.commit("Deploy green on 0002_split_name")
        let backfilling = await HTTP.eventually(timeout: 60, every: 0.02) {
            let done = try? await database.read { db -> Int? in
                guard try db.tableExists("_teal_backfill") else { return nil }
                return try Int.fetchOne(db, sql: "SELECT sum(done) FROM _teal_backfill WHERE migration = '0002_split_name'")
            }
            return (done ?? nil).map { $0 > 0 } ?? false
        }
        try #require(backfilling, "\(agent.output)")
        try story.repo.git("revert", "--no-edit", deploy)
        let revert = try story.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)

        let revertNote = await story.waitForNote(revert)
        #expect(revertNote?.hasPrefix("outcome: applied") == true, "\(revertNote ?? agent.output)")
        let deployNote = story.note(deploy)
        #expect(deployNote?.hasPrefix("outcome: superseded") == true, "\(deployNote ?? "no note")")
        #expect(agent.output.contains("backfill interrupted"), "the backfill was stopped, not run to its end")
        #expect(agent.output.contains("a newer commit arrived"))
        let state = try await database.read { try String.fetchOne($0, sql: "SELECT state FROM _teal_migrations WHERE name = '0002_split_name'") }
        #expect(state == "rolled_back")
        let columns = try await database.read { try String.fetchAll($0, sql: "SELECT name FROM pragma_table_info('users')") }
        #expect(columns == ["id", "name"])
        #expect(try await database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM users") } == before)
        #expect(try await database.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") } == "ok")
        #expect(try pids(story).green == nil, "green never started")
        #expect(await story.servedBy() == "blue")
    }
}
