import Yams

/// Reads traffic.yaml strictly.
enum TrafficParser {
    struct Marks {
        var colors: [(ColorName, Node)] = []
        var listen: Node?
    }

    static func parse(_ bytes: [UInt8], path: String, sink: DiagnosticSink) -> (TrafficManifest, Marks)? {
        let y = StrictYAML(path: path, sink: sink)
        guard let root = y.compose(bytes) else { return nil }
        guard let top = y.mapping(root, "traffic.yaml", allowed: ["listen", "live", "weights", "tls", "trusted_forwarders"], required: ["listen"]) else { return nil }
        let before = sink.items.count
        var marks = Marks()
        var listen: ListenAddress?
        if let n = top["listen"], let text = y.string(n, "listen") {
            marks.listen = n
            listen = ListenAddress.parse(text)
            if listen == nil {
                y.error(n, "listen: '\(text)' is not HOST:PORT with an IPv4 address, localhost or [IPv6] and a port 1-65535")
            }
        }
        var route = Route.none
        if let live = top["live"], top["weights"] != nil {
            y.error(live, "traffic.yaml has both 'live' and 'weights'; use one")
        } else if let n = top["live"], !StrictYAML.isNull(n) {
            if let name = y.string(n, "live") {
                if name == "none" {
                    route = .none
                } else if let color = ColorName(rawValue: name) {
                    route = .live(color)
                    marks.colors.append((color, n))
                } else {
                    y.error(n, "live: unknown color '\(name)' (blue or green)")
                }
            }
        } else if let n = top["weights"], let map = n.mapping {
            var weights: [ColorName: Int] = [:]
            for (key, value) in map {
                guard let name = key.scalar?.string, let color = ColorName(rawValue: name) else {
                    y.error(key, "weights: unknown color '\(key.scalar?.string ?? "?")' (blue or green)")
                    continue
                }
                guard let w = y.int(value, "weights.\(name)") else { continue }
                guard (0...100).contains(w) else { y.error(value, "weights.\(name) must be between 0 and 100"); continue }
                weights[color] = w
                if w > 0 { marks.colors.append((color, key)) }
            }
            let total = weights.values.reduce(0, +)
            if sink.items.count == before && total != 100 {
                y.error(n, "weights must sum to 100, they sum to \(total)")
            }
            route = Route(weights: weights)
        } else if let n = top["weights"] {
            y.error(n, "weights must be a mapping such as {blue: 90, green: 10}")
        } else {
            // Routing nothing must be said, not fallen into by leaving `live` out or empty.
            y.error(top["live"] ?? root, "traffic.yaml routes no traffic; write `live: none` to run the colors without traffic, "
                + "or `live: blue` (or weights) to serve one")
        }
        var tls: TrafficTLS?
        if let n = top["tls"], let m = y.mapping(n, "tls", allowed: ["certificate", "key"], required: ["certificate", "key"]) {
            var files: [String: String] = [:]
            for name in ["certificate", "key"] {
                guard let node = m[name], let file = y.string(node, "tls.\(name)") else { continue }
                if !file.hasPrefix("/") || file.split(separator: "/").contains("..") {
                    y.error(node, "tls.\(name): '\(file)' must be an absolute host path without '..' (keep keys out of git)")
                } else {
                    files[name] = file
                }
            }
            if let certificate = files["certificate"], let key = files["key"] { tls = TrafficTLS(certificate: certificate, key: key) }
        }
        var trusted: [String]?
        if let n = top["trusted_forwarders"], let items = y.list(n, "trusted_forwarders") {
            var entries: [String] = []
            for (i, item) in items.enumerated() {
                guard let text = y.string(item, "trusted_forwarders[\(i)]") else { continue }
                if ForwarderAddress.isValid(text) {
                    entries.append(text)
                } else {
                    y.error(item, "trusted_forwarders: '\(text)' is not an IP address or network (such as 127.0.0.1, ::1 or 10.0.0.0/8)")
                }
            }
            trusted = entries
        }
        guard sink.items.count == before, let listen else { return nil }
        return (TrafficManifest(listen: listen, route: route, tls: tls, trustedForwarders: trusted), marks)
    }
}
