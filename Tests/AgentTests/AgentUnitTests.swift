import Foundation
import Testing
@testable import Agent
import State

@Suite struct AuditNoteTests {
    @Test func noteStartsWithTheOutcomeThenOneLinePerStep() {
        var record = AuditRecord(commit: "abc", outcome: .failed, host: "web-1", startedAt: Date(timeIntervalSince1970: 0),
                                 finishedAt: Date(timeIntervalSince1970: 2.5))
        record.steps = [.init(summary: "shop: start migration 0002_split_name", seconds: 1.25),
                        .init(summary: "shop: start green", seconds: 1.0, error: "not healthy after 30s")]
        record.errors = ["shop: start green: not healthy after 30s"]
        let lines = record.note.split(separator: "\n").map(String.init)
        #expect(lines.first == "outcome: failed")
        #expect(lines.contains("host: web-1"))
        #expect(lines.contains("finished: 1970-01-01T00:00:02Z (2.50s)"))
        #expect(lines.contains("step 1: shop: start migration 0002_split_name [ok, 1.25s]"))
        #expect(lines.contains("step 2: shop: start green [failed, 1.00s]"))
        #expect(lines.last == "error: shop: start green: not healthy after 30s")
    }
}

@Suite struct WebhookSignatureTests {
    @Test func verifiesGitHubStyleSignatures() {
        let signer = WebhookSignature(secret: "It's a Secret to Everybody")
        let body = Array("Hello, World!".utf8)
        // The example from GitHub's webhook documentation.
        #expect(signer.sign(body) == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
        #expect(signer.verify(body, header: signer.sign(body)))
        #expect(!signer.verify(body, header: nil))
        #expect(!signer.verify(body, header: "sha256=00"))
        #expect(!signer.verify(Array("Hello, World?".utf8), header: signer.sign(body)))
        #expect(!WebhookSignature(secret: "other").verify(body, header: signer.sign(body)))
    }

    @Test func adminAddressesParse() {
        #expect(AdminServer.Configuration.parse("127.0.0.1:9400", secret: nil)?.port == 9400)
        #expect(AdminServer.Configuration.parse("[::1]:9400", secret: nil)?.host == "::1")
        #expect(AdminServer.Configuration.parse("9400", secret: nil) == nil)
        #expect(AdminServer.Configuration.parse("127.0.0.1:99999", secret: nil) == nil)
    }
}

/// The watch loop sleeps until its next deadline; the webhook and shutdown wake it early.
@Suite struct PassTriggerTests {
    @Test func firingEndsTheSleepAndIsTakenOnce() async {
        let trigger = PassTrigger()
        let clock = ContinuousClock()
        let started = clock.now
        async let slept: Void = trigger.sleep(until: started + .seconds(60))
        try? await Task.sleep(for: .milliseconds(100))
        trigger.fire()
        await slept
        #expect(started.duration(to: clock.now) < .seconds(30))
        #expect(trigger.take())
        #expect(!trigger.take())
    }

    @Test func aPendingFireMakesTheNextSleepReturnAtOnce() async {
        let trigger = PassTrigger()
        trigger.fire()
        let clock = ContinuousClock()
        let started = clock.now
        await trigger.sleep(until: started + .seconds(60))
        #expect(started.duration(to: clock.now) < .seconds(30))
        #expect(trigger.take())
    }

    @Test func theDeadlineEndsTheSleepWithoutAPass() async {
        let trigger = PassTrigger()
        let clock = ContinuousClock()
        let started = clock.now
        await trigger.sleep(until: started + .milliseconds(200))
        #expect(started.duration(to: clock.now) >= .milliseconds(200))
        #expect(!trigger.take())
        // The deadline's end leaves the trigger ready for the next sleep.
        async let slept: Void = trigger.sleep(until: clock.now + .seconds(60))
        try? await Task.sleep(for: .milliseconds(100))
        trigger.fire()
        await slept
        #expect(trigger.take())
    }

    @Test func stoppingEndsThisSleepAndEveryLaterOne() async {
        let trigger = PassTrigger()
        let clock = ContinuousClock()
        let started = clock.now
        async let slept: Void = trigger.sleep(until: started + .seconds(60))
        try? await Task.sleep(for: .milliseconds(100))
        trigger.stop()
        await slept
        await trigger.sleep(until: clock.now + .seconds(60))
        #expect(started.duration(to: clock.now) < .seconds(30))
        #expect(!trigger.take())
    }
}
