/// How requests are split between colors. Empty: no color gets traffic (the router answers 503).
public struct Route: Codable, Hashable, Sendable, CustomStringConvertible {
    /// Percentages, summing to 100 when not empty; zero weights are dropped.
    public private(set) var weights: [ColorName: Int]

    public init(weights: [ColorName: Int]) { self.weights = weights.filter { $0.value > 0 } }

    /// All traffic to one color.
    public static func live(_ color: ColorName) -> Route { Route(weights: [color: 100]) }
    public static let none = Route(weights: [:])

    public func weight(of color: ColorName) -> Int { weights[color] ?? 0 }
    /// Colors that receive some traffic.
    public var colors: [ColorName] { weights.keys.sorted() }
    /// The single color receiving everything, if the route is not a split.
    public var liveColor: ColorName? { weights.count == 1 ? weights.first?.key : nil }

    public var description: String {
        if weights.isEmpty { return "no color" }
        if let live = liveColor { return "all traffic to \(live)" }
        return colors.map { "\($0) \(weights[$0]!)%" }.joined(separator: ", ")
    }
}

/// `host:port` the router listens on for an app's users.
public struct ListenAddress: Codable, Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `HOST:PORT` (`[v6]:PORT` for IPv6); HOST is an IPv4 address, `localhost` or a bracketed IPv6 address.
    public static func parse(_ text: String) -> ListenAddress? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            let octets = host.split(separator: ".", omittingEmptySubsequences: false)
            let isIPv4 = octets.count == 4 && octets.allSatisfy { o in
                !o.isEmpty && o.count <= 3 && o.allSatisfy { $0.isASCII && $0.isNumber } && (Int(o) ?? 256) <= 255
            }
            guard isIPv4 || host == "localhost" else { return nil }
        }
        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portText), (1...65535).contains(port) else {
            return nil
        }
        return ListenAddress(host: String(host), port: port)
    }
}

/// apps/<app>/traffic.yaml.
public struct TrafficManifest: Codable, Hashable, Sendable {
    public var listen: ListenAddress
    public var route: Route

    public init(listen: ListenAddress, route: Route) {
        self.listen = listen
        self.route = route
    }
}
