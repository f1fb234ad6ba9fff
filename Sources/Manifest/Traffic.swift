#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

/// TLS on the listen address: a PEM certificate chain and its private key, absolute host paths outside git (like
/// `env_files`). The router loads them again when either file changes.
public struct TrafficTLS: Codable, Hashable, Sendable {
    public var certificate: String
    public var key: String

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }
}

/// apps/<app>/traffic.yaml.
public struct TrafficManifest: Codable, Hashable, Sendable {
    public var listen: ListenAddress
    public var route: Route
    /// Terminate TLS on `listen` with these files; nil: plain HTTP.
    public var tls: TrafficTLS?
    /// Peers (addresses or CIDR networks) trusted to have set `X-Forwarded-*` and `Forwarded` already; nil: loopback
    /// only, empty: nobody.
    public var trustedForwarders: [String]?

    public init(listen: ListenAddress, route: Route, tls: TrafficTLS? = nil, trustedForwarders: [String]? = nil) {
        self.listen = listen
        self.route = route
        self.tls = tls
        self.trustedForwarders = trustedForwarders
    }
}

/// Addresses and networks as `trusted_forwarders` takes them: an IPv4 or IPv6 address, optionally `/PREFIX`.
public enum ForwarderAddress {
    /// Whether `text` is `ADDRESS` or `ADDRESS/PREFIX` with the prefix within the address's bit length.
    public static func isValid(_ text: String) -> Bool {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let bits: Int
        if isIPv4(parts[0]) { bits = 32 } else if isIPv6(parts[0]) { bits = 128 } else { return false }
        guard parts.count == 2 else { return true }
        guard !parts[1].isEmpty, parts[1].count <= 3, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let prefix = Int(parts[1]) else {
            return false
        }
        return prefix <= bits
    }

    /// The way the router reads them (inet_pton), so what validates here is what the router accepts.
    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }
}
