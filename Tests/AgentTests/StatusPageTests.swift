import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import Synchronization
import Testing
import TestSupport
@testable import Agent
import State

/// The status page in a real browser (headless Chromium), served by the real admin router over HTTP, from
/// reports with no app, one app and fifty apps; live updates; nothing a manifest or commit says is run as markup.
@Suite(.serialized) struct StatusPageTests {
    static func color(_ name: String, release: String, healthy: Bool = true, weight: Int, requests: Int? = nil) -> StatusReport.Color {
        StatusReport.Color(color: name, release: release, schema: "0001_create_users", commit: "3f2a1b0c", pid: 4242, port: 40000,
                           running: true, healthy: healthy, uptimeSeconds: 75, weight: weight, requests: requests, inFlight: 0)
    }

    static func app(_ name: String, requests: Int = 0) -> StatusReport.App {
        StatusReport.App(name: name, listen: "127.0.0.1:8080", traffic: "live: blue", weights: ["blue": 100],
                         colors: [color("blue", release: "1.0.0", weight: 100, requests: requests), color("green", release: "2.0.0", weight: 0)],
                         schema: "0001_create_users completed")
    }

    /// Serves `report()` on a free loopback port while `body` runs.
    static func serving(_ report: @escaping @Sendable () -> StatusReport, _ body: (String) async throws -> Void) async throws {
        // The browser may close while the page's poll is answered; a write to that socket must not end the test process.
        signal(SIGPIPE, SIG_IGN)
        let port = freeLoopbackPort()
        let handlers = AdminServer.Handlers(status: { report() }, metrics: nil, trigger: {})
        let app = Application(router: AdminServer.router(handlers, webhookSecret: nil),
                              configuration: .init(address: .hostname("127.0.0.1", port: port)))
        let server = Task { try await app.runService(gracefulShutdownSignals: []) }
        defer { server.cancel() }
        let base = "http://127.0.0.1:\(port)"
        #expect(await HTTP.eventually(timeout: 10) { await HTTP.request(base + "/status")?.status == 200 })
        try await body(base)
    }

    @Test(.timeLimit(.minutes(2)))
    func noAppsOneAppAndFiftyApps() async throws {
        let artifacts = Chromium.artifacts("status-page")
        for count in [0, 1, 50] {
            let report = StatusReport(routerPid: count == 0 ? nil : 777, apps: (0..<count).map { Self.app("app-\($0)") })
            try await Self.serving({ report }) { base in
                let dom = try Chromium.dumpDOM(base + "/")
                #expect(occurrences(of: "class=\"app\"", in: dom) == count, "\(count) apps")
                #expect(occurrences(of: "data-color=\"blue\"", in: dom) == count)
                if count == 0 { #expect(dom.contains("no apps are running")) }
                if count == 50 { #expect(dom.contains("data-app=\"app-49\"")) }
                let size = try Chromium.screenshot(base + "/", to: "\(artifacts)/apps-\(count).png", height: count == 50 ? 4000 : 900)
                #expect(size > 1000, "screenshot of \(count) apps")
            }
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func thePageUpdatesItselfFromTheAgent() async throws {
        let calls = Atomic<Int>(0)
        try await Self.serving({
            let n = calls.add(1, ordering: .relaxed).newValue
            return StatusReport(routerPid: 777, apps: [Self.app("shop", requests: n * 1000)])
        }) { base in
            let dom = try Chromium.dumpDOM(base + "/", budget: 3500)
            let updates = dom.firstRange(of: #/data-updates="(\d+)"/#).map { Int(dom[$0].split(separator: "\"")[1]) ?? 0 } ?? 0
            #expect(updates >= 1, "the script replaced the page at least once: \(dom.prefix(400))")
            // The first render showed 1000 requests; the DOM now shows a later report's count.
            #expect(!dom.contains("<td>1000</td>"), "\(dom)")
            #expect(dom.range(of: #"<td>[2-9]000</td>"#, options: .regularExpression) != nil, "\(dom)")
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func markupInReleaseLabelsErrorsAndNamesIsShownAsText() async throws {
        var shop = Self.app("shop")
        shop.colors[1].release = #"2.0.0<img src=x onerror="document.title='owned'"><b id="injected">x</b>"#
        shop.listen = "<script>document.title='owned'</script>"
        let reconciled = StatusReport.reconciled(commit: "9c8d7e6f00", outcome: "failed", note: """
            outcome: failed
            step 1: shop: start green (release <b id="step-injected">x</b>) [failed, 2.00s]
            error: shop green: <script>document.title='owned'</script> did not become healthy
            """, startedAt: Date())
        let report = StatusReport(routerPid: 1, apps: [shop],
                                  head: .init(commit: "9c8d7e6f00", outcome: "failed", errors: [], serving: "3f2a1b0c",
                                              summary: "serving 3f2a1b0c; HEAD 9c8d7e6f failed: <i id=\"head-injected\">x</i>"),
                                  timeline: [reconciled])
        try await Self.serving({ report }) { base in
            let dom = try Chromium.dumpDOM(base + "/", budget: 2500)
            #expect(dom.contains("<title>teal status</title>"), "no script ran: \(dom.prefix(300))")
            for id in ["injected", "step-injected", "head-injected"] {
                #expect(dom.range(of: "<[a-z]+ id=\"\(id)\"", options: .regularExpression) == nil, "\(id) became an element")
            }
            #expect(!dom.contains("<img"))
            #expect(dom.contains("&lt;b id=\"injected\"&gt;"))
            #expect(dom.contains("serving 3f2a1b0c; HEAD 9c8d7e6f failed"))
            #expect(dom.contains("class=\"head bad\""))
        }
        let header = StatusPage.contentSecurityPolicy
        #expect(header.contains("default-src 'none'") && header.contains("script-src 'sha256-"))
    }
}

/// The timeline names each commit's subject and author from its note, as text.
@Suite struct TimelineAuthorTests {
    @Test func theTimelineShowsWhoMadeEachCommitEscaped() {
        var audit = AuditRecord(commit: String(repeating: "a", count: 40), outcome: .applied, host: "web-1",
                                startedAt: Date(timeIntervalSince1970: 0), finishedAt: Date(timeIntervalSince1970: 1))
        audit.author = "Eve <eve@example.com>"
        audit.subject = "Deploy <script>alert(1)</script>"
        let entry = StatusReport.reconciled(commit: audit.commit, outcome: "applied", note: audit.note, startedAt: audit.startedAt)
        #expect(entry.author == "Eve <eve@example.com>")
        #expect(entry.subject == "Deploy <script>alert(1)</script>")
        let html = StatusPage.render(entry)
        #expect(html.contains("by Eve &lt;eve@example.com&gt;"), "\(html)")
        #expect(!html.contains("<script>alert(1)</script>") && html.contains("&lt;script&gt;"), "\(html)")
    }
}
