import Crypto
import Foundation
import Testing
@testable import Agent
@testable import Drivers
import Reconcile
import State

/// The documents commit statuses and the generic webhook are sent as, and the receivers' checks; pure.
@Suite struct ReportRequestTests {
    let settings = ReportSettings(provider: .github, api: "https://api.github.com", repository: "acme/deploy", tokenFile: "/dev/null",
                                  context: "teal/prod", targetURL: "https://teal.example.com/")
    let pending = CommitReport(event: .pending, commit: "0123abcd", apps: ["shop"], message: "reconciling: 3 steps planned", host: "web-1")

    func json(_ request: ReportRequest) throws -> [String: String] {
        try #require(try JSONSerialization.jsonObject(with: request.body) as? [String: String])
    }

    @Test func gitHubAndGiteaStatusesFollowTheirDocumentedShape() throws {
        let github = try #require(ReportRequests.commitStatus(pending, settings: settings, token: "ghp_x"))
        #expect(github.url == "https://api.github.com/repos/acme/deploy/statuses/0123abcd")
        #expect(github.headers["Authorization"] == "Bearer ghp_x")
        #expect(github.headers["Accept"] == "application/vnd.github+json" && github.headers["User-Agent"] == "teal")
        #expect(try json(github) == ["state": "pending", "context": "teal/prod", "description": "reconciling: 3 steps planned",
                                     "target_url": "https://teal.example.com/"])
        var gitea = settings
        gitea.provider = .gitea
        gitea.api = "https://git.example.com/api/v1"
        let request = try #require(ReportRequests.commitStatus(pending, settings: gitea, token: "t0k"))
        #expect(request.url == "https://git.example.com/api/v1/repos/acme/deploy/statuses/0123abcd")
        #expect(request.headers["Authorization"] == "token t0k")
        #expect(try json(request)["context"] == "teal/prod")
    }

    @Test func gitLabStatusesUseTheProjectPathAndPrivateToken() throws {
        var gitlab = settings
        gitlab.provider = .gitlab
        gitlab.api = "https://gitlab.example.com/api/v4"
        gitlab.repository = "group/sub/deploy"
        let request = try #require(ReportRequests.commitStatus(pending, settings: gitlab, token: "glpat-x"))
        #expect(request.url == "https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fdeploy/statuses/0123abcd")
        #expect(request.headers["PRIVATE-TOKEN"] == "glpat-x" && request.headers["Authorization"] == nil)
        #expect(try json(request) == ["state": "running", "name": "teal/prod", "description": "reconciling: 3 steps planned",
                                      "target_url": "https://teal.example.com/"])
    }

    @Test func outcomesMapToEachProvidersStates() {
        func state(_ outcome: Outcome, _ provider: ReportSettings.Provider) -> String {
            ReportRequests.state(CommitReport(event: .outcome, commit: "c", outcome: outcome, message: "", host: "h"), provider: provider)
        }
        #expect(Outcome.allCases.map { state($0, .github) } == ["success", "failure", "failure", "error", "success"])
        #expect(Outcome.allCases.map { state($0, .gitea) } == ["success", "failure", "failure", "warning", "success"])
        #expect(Outcome.allCases.map { state($0, .gitlab) } == ["success", "failed", "failed", "canceled", "success"])
    }

    @Test func theWebhookIsSignedWithHMACOfTheBodyAndCarriesNoCredentials() throws {
        let report = CommitReport(event: .outcome, commit: "0123abcd", outcome: .failed, apps: ["shop"], message: "failed: shop: start green: x",
                                  errors: ["shop: start green: x"], host: "web-1", time: Date(timeIntervalSince1970: 0))
        let request = ReportRequests.webhook(report, url: "http://127.0.0.1:1/hook", secret: Array("s3cret".utf8),
                                              repository: "https://deploy:hunter2@git.example.com/acme/deploy.git", branch: "main")
        let mac = HMAC<SHA256>.authenticationCode(for: request.body, using: SymmetricKey(data: Array("s3cret".utf8)))
        #expect(request.headers["X-Teal-Signature-256"] == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        #expect(request.headers["X-Teal-Event"] == "outcome")
        let document = try #require(try JSONSerialization.jsonObject(with: request.body) as? [String: Any])
        #expect(document["state"] as? String == "failure" && document["outcome"] as? String == "failed")
        #expect(document["commit"] as? String == "0123abcd" && document["time"] as? String == "1970-01-01T00:00:00Z")
        #expect(document["repository"] as? String == "https://git.example.com/acme/deploy.git")
        #expect(!String(decoding: request.body, as: UTF8.self).contains("hunter2"))
    }

    @Test func theRepositoryIsDerivedFromForgeURLs() throws {
        #expect(RepositoryLocation.parse("git@github.com:acme/deploy.git") == RepositoryLocation(host: "github.com", path: "acme/deploy"))
        #expect(RepositoryLocation.parse("ssh://git@gitlab.example.com:2222/group/sub/deploy.git")
            == RepositoryLocation(host: "gitlab.example.com", path: "group/sub/deploy"))
        #expect(RepositoryLocation.parse("https://gitea.example.com/acme/deploy/") == RepositoryLocation(host: "gitea.example.com", path: "acme/deploy"))
        #expect(RepositoryLocation.parse("/srv/desired") == nil)
        #expect(RepositoryLocation.parse("file:///srv/desired.git") == nil)

        let github = try ReportSettings(provider: .github, tokenFile: "/dev/null").resolved(repositoryURL: "git@github.com:acme/deploy.git")
        #expect(github.api == "https://api.github.com" && github.repository == "acme/deploy")
        let gitlab = try ReportSettings(provider: .gitlab, tokenFile: "/dev/null").resolved(repositoryURL: "https://gitlab.example.com/g/deploy.git")
        #expect(gitlab.api == "https://gitlab.example.com/api/v4" && gitlab.repository == "g/deploy")

        #expect(throws: ReportSettingsError.self) { try ReportSettings(provider: .github, tokenFile: "/dev/null").resolved(repositoryURL: "/srv/desired") }
        #expect(throws: ReportSettingsError.self) { try ReportSettings(provider: .gitea, tokenFile: "/dev/null").resolved(repositoryURL: "/srv/desired") }
        #expect(throws: ReportSettingsError.self) {
            try ReportSettings(provider: .github, repository: "acme/../x", tokenFile: "/dev/null").resolved(repositoryURL: "/srv/desired")
        }
        #expect(throws: ReportSettingsError.self) {
            try ReportSettings(provider: .github, repository: "acme/deploy").resolved(repositoryURL: "/srv/desired")
        }
        #expect(throws: ReportSettingsError.self) { try ReportSettings(notifyURL: "ftp://x/").resolved(repositoryURL: "/srv/desired") }
    }

    @Test func receiversRecogniseEachProviderAndRefuseWrongSecrets() {
        let signature = WebhookSignature(secret: "s3cret")
        let body = Array(#"{"ref":"refs/heads/main"}"#.utf8)
        func check(_ headers: [String: String], _ payload: [UInt8]? = nil) -> WebhookSender.Verdict {
            WebhookSender.check(header: { headers[$0] }, body: payload ?? body, signature: signature)
        }
        #expect(check(["x-gitlab-token": "s3cret"]) == .accepted(.gitlab))
        #expect(check(["x-gitlab-token": "s3cre"]) == .refused("X-Gitlab-Token is not the webhook secret"))
        #expect(check(["x-gitea-signature": signature.hex(body)]) == .accepted(.gitea))
        #expect(check(["x-forgejo-signature": signature.hex(body)]) == .accepted(.forgejo))
        #expect(check(["x-gitea-signature": WebhookSignature(secret: "other").hex(body)]) == .refused("bad X-Gitea-Signature"))
        #expect(check(["x-gitea-signature": signature.hex(body)], Array("tampered".utf8)) == .refused("bad X-Gitea-Signature"))
        #expect(check(["x-hub-signature-256": signature.sign(body)]) == .accepted(.github))
        // The first header present decides: a bad GitLab token is not rescued by a good GitHub signature.
        #expect(check(["x-gitlab-token": "nope", "x-hub-signature-256": signature.sign(body)]) != .accepted(.github))
        if case .refused = check([:]) {} else { Issue.record("no header must be refused") }
    }
}
