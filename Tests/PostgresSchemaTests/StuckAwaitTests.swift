import Foundation
import Synchronization
import Testing
@testable import PostgresSchema
@testable import Schema

/// The guard on awaits that may never return (a statement on a connection the server ended).
@Suite struct StuckAwaitTests {
    struct GaveUp: Error {}

    @Test func workThatFinishesGivesItsValue() async throws {
        let value = try await StuckAwait.run(interval: .milliseconds(10), stuck: { true }, giveUp: { GaveUp() }) { 42 }
        #expect(value == 42)
    }

    @Test func workThatNeverAnswersIsGivenUpOnOnceStuck() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        await #expect(throws: GaveUp.self) {
            _ = try await StuckAwait.run(interval: .milliseconds(20), strikes: 3, stuck: { true }, giveUp: { GaveUp() }) { () async throws -> Int in
                // Never resumed, as an await on a dead connection was.
                await withCheckedContinuation { (_: CheckedContinuation<Void, Never>) in }
                return 1
            }
        }
        #expect(started.duration(to: clock.now) < .seconds(30))
    }

    @Test func slowWorkOnAHealthyConnectionIsNeverCut() async throws {
        let value = try await StuckAwait.run(interval: .milliseconds(10), strikes: 2, stuck: { false }, giveUp: { GaveUp() }) { () async throws -> String in
            try await Task.sleep(for: .milliseconds(300))
            return "index built"
        }
        #expect(value == "index built")
    }

    @Test func stuckMustHoldInARow() async throws {
        let ticks = Mutex(0)
        // Stuck every other check: never three in a row, so the work's own answer wins.
        let value = try await StuckAwait.run(interval: .milliseconds(10), strikes: 3,
                                             stuck: { ticks.withLock { $0 += 1; return $0 % 2 == 0 } }, giveUp: { GaveUp() }) { () async throws -> Int in
            try await Task.sleep(for: .milliseconds(300))
            return 7
        }
        #expect(value == 7)
    }

    @Test func theWorksErrorIsPassedOn() async throws {
        await #expect(throws: SchemaError.self) {
            _ = try await StuckAwait.run(interval: .milliseconds(10), stuck: { false }, giveUp: { GaveUp() }) { () async throws -> Int in
                throw SchemaError("refused")
            }
        }
    }
}
