import Foundation
import Manifest
import Planning
import Runtime
import Testing
@testable import Agent
import Drivers
import State

/// The log range a step records, read back after the color's log moved on: more lines, a new release's archive,
/// a rotation.
@Suite struct StepLogTests {
    @Test func aStepsRangeIsFoundAfterArchivingAndGoneAfterRotation() throws {
        let data = NSTemporaryDirectory() + "teal-steplog-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let store = try StateStore(dataDir: data)
        let runtime = ProcessColorRuntime(dataDir: data)
        let files = LogFiles(dataDir: data)
        let log = RuntimePaths(dataDir: data).log(app: "shop", color: .blue)
        let spec = ColorSpec(release: "1.0.0", command: ["python3", "app.py"], schema: "0001_create_users")
        files.prepare(app: "shop", color: .blue, spec: spec, commit: "aaaaaaaa1")
        try "before the step\n".write(toFile: log, atomically: false, encoding: .utf8)

        let ids = try store.journal(commit: "c1", steps: [PlannedStep(.awaitHealthy(app: "shop", color: .blue), reason: "r")])
        let start = runtime.logPosition(app: "shop", color: .blue)
        let handle = try #require(FileHandle(forWritingAtPath: log))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("during the step\nstill the step\n".utf8))
        try store.saveStepLog(ids[0], try #require(runtime.logRange(app: "shop", color: .blue, since: start)))
        try handle.write(contentsOf: Data("after the step\n".utf8))
        try handle.close()

        func read(_ color: String = "blue", _ step: Int64? = nil) -> AdminServer.StepLog {
            AdminServer.StepLog.read(store: store, dataDir: data, app: "shop", color: color, step: step ?? ids[0])
        }
        #expect(read() == .lines("during the step\nstill the step\n"))
        #expect(read("green") == .unknown)
        #expect(read("blue", 12345) == .unknown)

        // A new release moves the file aside: the lines are read from the archive.
        files.prepare(app: "shop", color: .blue, spec: ColorSpec(release: "2.0.0", command: ["python3", "app.py"], schema: "0001_create_users"),
                      commit: "bbbbbbbb2")
        try "the new release\n".write(toFile: log, atomically: false, encoding: .utf8)
        #expect(read() == .lines("during the step\nstill the step\n"))

        // A step of the new release, then a rotation (copy away, truncate) and new lines: its range now holds
        // other bytes, so it is gone rather than answered wrongly.
        let second = try store.journal(commit: "c2", steps: [PlannedStep(.awaitHealthy(app: "shop", color: .blue), reason: "r")])
        let from = runtime.logPosition(app: "shop", color: .blue)
        let more = try #require(FileHandle(forWritingAtPath: log))
        try more.seekToEnd()
        try more.write(contentsOf: Data("second step\n".utf8))
        try more.close()
        try store.saveStepLog(second[0], try #require(runtime.logRange(app: "shop", color: .blue, since: from)))
        #expect(read("blue", second[0]) == .lines("second step\n"))
        LogRotation.rotateIfNeeded(log, limit: 0)
        try "written after the rotation, long enough to cover the range\n".write(toFile: log, atomically: false, encoding: .utf8)
        #expect(read("blue", second[0]) == .gone)
    }
}
