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
