import Crypto
import Foundation

/// The status page the admin endpoint serves at `GET /`: rendered on the server from a `StatusReport`, every value
/// from manifests, commits and logs escaped; a few lines of plain JavaScript fetch `/?fragment=main` every second and
/// swap the main element, so the page follows a deploy as it happens. Nothing is fetched from elsewhere, and the
/// Content-Security-Policy allows only this page's own script and style.
public enum StatusPage {
    /// The whole document.
    public static func document(_ report: StatusReport) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>teal status</title><style>\(style)</style></head>
        <body data-updates="0"><header><h1>teal</h1><span id="live" class="muted">live: every 1s</span></header>
        <main id="main">\(main(report))</main>
        <script>\(script)</script></body></html>

        """
    }

    /// The part that live updates replace.
    public static func main(_ report: StatusReport) -> String {
        var html = ""
        html += "<section class=\"overview\">"
        html += "<p class=\"router\">router: \(report.routerPid.map { "running (pid \($0))" } ?? "not running")</p>"
        if let head = report.head {
            let bad = head.outcome == "failed" || head.outcome == "refused"
            html += "<p class=\"head\(bad ? " bad" : "")\" data-outcome=\"\(e(head.outcome ?? ""))\">\(e(head.summary))</p>"
        }
        if let suspended = report.suspended {
            html += "<p class=\"suspended\" data-scope=\"all\">every app is \(e(suspended))</p>"
        }
        html += "</section>"
        if report.apps.isEmpty { html += "<p class=\"empty\">no apps are running</p>" }
        for app in report.apps { html += render(app) }
        html += "<section class=\"timeline\"><h2>recent commits</h2>"
        if report.timeline.isEmpty { html += "<p class=\"muted\">nothing reconciled yet</p>" }
        html += "<ol>"
        for commit in report.timeline { html += render(commit) }
        html += "</ol></section>"
        return html
    }

    static func render(_ app: StatusReport.App) -> String {
        var html = "<section class=\"app\" id=\"app-\(e(app.name))\" data-app=\"\(e(app.name))\">"
        html += "<h2>\(e(app.name))</h2><p class=\"traffic\">traffic: <b>\(e(app.traffic))</b>"
        if let listen = app.listen { html += " on <code>\(e(listen))</code>" }
        html += "</p>"
        if let suspended = app.suspended { html += "<p class=\"suspended\">\(e(suspended))</p>" }
        if let schema = app.schema, !schema.isEmpty { html += "<p class=\"schema\">schema: \(e(schema))</p>" }
        if let b = app.backfill, b.total > 0 {
            if b.done < b.total {
                html += "<p class=\"backfill\">backfill \(e(b.migration)): \(b.done)/\(b.total) rows (\(100 * b.done / b.total)%)"
                if let rate = b.rowsPerSecond { html += ", \(Int(rate)) rows/s" }
                html += " <progress max=\"\(b.total)\" value=\"\(b.done)\"></progress></p>"
            } else {
                html += "<p class=\"backfill muted\">backfill \(e(b.migration)): done, \(b.total) rows</p>"
            }
        }
        html += "<table><thead><tr><th>color</th><th>release</th><th>commit</th><th>state</th><th>uptime</th><th>restarts</th>"
        html += "<th>traffic</th><th>requests</th><th>log</th></tr></thead><tbody>"
        for c in app.colors {
            html += "<tr class=\"color \(e(c.state))\" data-color=\"\(e(c.color))\" data-state=\"\(e(c.state))\" data-weight=\"\(c.weight)\">"
            html += "<td>\(e(c.color))</td><td class=\"release\">\(e(c.release))</td><td><code>\(e(c.commit))</code></td>"
            html += "<td class=\"state\">\(e(c.state))</td><td>\(c.uptimeSeconds.map(duration) ?? "-")</td>"
            html += "<td class=\"restarts\">\(c.restarts)</td><td class=\"weight\">\(c.weight)%</td>"
            html += "<td>\(c.requests.map(String.init) ?? "-")</td>"
            html += "<td><a href=\"/logs/\(e(app.name))/\(e(c.color))\">log</a></td></tr>"
        }
        html += "</tbody></table></section>"
        return html
    }

    static func render(_ commit: StatusReport.Reconciled) -> String {
        var html = "<li class=\"commit \(e(commit.outcome))\" data-commit=\"\(e(commit.commit))\" data-outcome=\"\(e(commit.outcome))\">"
        html += "<code>\(e(String(commit.commit.prefix(8))))</code> <b class=\"outcome\">\(e(commit.outcome))</b>"
        if let subject = commit.subject { html += " <span class=\"subject\">\(e(subject))</span>" }
        if let author = commit.author { html += " <span class=\"author muted\">by \(e(author))</span>" }
        html += " <span class=\"muted\">\(e(commit.startedAt.formatted(.iso8601)))"
        if let seconds = commit.seconds { html += ", \(String(format: "%.2f", seconds))s" }
        html += "</span>"
        if !commit.steps.isEmpty {
            html += "<ul class=\"steps\">"
            for step in commit.steps {
                html += "<li class=\"step \(e(step.status))\">\(e(step.summary)) <span class=\"muted\">[\(e(step.status))"
                if let seconds = step.seconds { html += ", \(String(format: "%.2f", seconds))s" }
                html += "]</span>"
                if let app = step.app, let color = step.color {
                    // The lines this step wrote when it recorded them, else the color's log as it is now.
                    let query = step.journal.map { "?step=\($0)" } ?? ""
                    html += " <a class=\"step-log\" href=\"/logs/\(e(app))/\(e(color))\(query)\">log</a>"
                }
                html += "</li>"
            }
            html += "</ul>"
        }
        for error in commit.errors { html += "<pre class=\"error\">\(e(error))</pre>" }
        for note in commit.notes { html += "<p class=\"later bad\">\(e(note))</p>" }
        return html + "</li>"
    }

    /// Escapes text for HTML content and quoted attribute values.
    public static func e(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m\(seconds % 60)s" }
        return "\(seconds / 3600)h\(seconds / 60 % 60)m"
    }

    static let style = """
        body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 16px;color:#1d2a2a;background:#f7fbfb}\
        header{display:flex;align-items:baseline;gap:12px}h1{color:#0f7c7c;margin:12px 0}h2{margin:16px 0 4px}\
        table{border-collapse:collapse;width:100%;background:#fff}th,td{border-bottom:1px solid #dde;padding:4px 8px;text-align:left}\
        .muted{color:#6a7a7a}.healthy .state{color:#17803d}.unhealthy .state,.down .state,.crashloop .state,.bad,.failed .outcome,\
        .refused .outcome{color:#b3261e;font-weight:600}.applied .outcome{color:#17803d}.noop .outcome{color:#5f6368}.suspended{color:#8a5a00;font-weight:600}\
        .timeline ol{list-style:none;padding:0}.commit{background:#fff;margin:6px 0;padding:6px 8px;border-left:4px solid #0f7c7c}\
        .commit.failed,.commit.refused{border-left-color:#b3261e}.steps{margin:4px 0 0 12px;padding:0}pre.error{white-space:pre-wrap;\
        color:#b3261e;margin:4px 0}
        """

    static let script = """
        (function(){var n=0;setInterval(function(){fetch('/?fragment=main',{cache:'no-store'}).then(function(r){\
        if(!r.ok)throw new Error(r.status);return r.text();}).then(function(t){document.getElementById('main').innerHTML=t;\
        n+=1;document.body.setAttribute('data-updates',String(n));document.getElementById('live').textContent='live: updated '\
        +new Date().toLocaleTimeString();}).catch(function(){document.getElementById('live').textContent='live: agent not answering';});},1000);})();
        """

    /// Only this page's own script and style run; everything else is refused by the browser.
    public static let contentSecurityPolicy: String = {
        func hash(_ text: String) -> String { "'sha256-\(Data(SHA256.hash(data: Data(text.utf8))).base64EncodedString())'" }
        return "default-src 'none'; script-src \(hash(script)); style-src \(hash(style)); connect-src 'self'; base-uri 'none'; form-action 'none'"
    }()
}
