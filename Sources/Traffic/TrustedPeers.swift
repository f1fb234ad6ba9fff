#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Addresses and networks (`10.0.0.0/8`, `::1`, `192.0.2.7`) of peers trusted to have set `X-Forwarded-*` and
/// `Forwarded` already: a load balancer or TLS terminator in front of the router. What any other peer sends in
/// those fields is dropped and replaced by what the router saw.
struct TrustedPeers: Sendable, Equatable {
    private struct Network: Sendable, Equatable {
        var bytes: [UInt8]
        var prefix: Int
    }

    private var networks: [Network]

    /// Loopback only: a proxy on the same host (deploy/nginx-in-front.conf) is trusted, nobody else.
    static let loopback = try! TrustedPeers(["127.0.0.0/8", "::1"])
    static let nobody = try! TrustedPeers([])

    /// Parses each entry; throws a `RouterError` naming the first one that is not an address or network.
    init(_ entries: [String]) throws {
        networks = try entries.map { entry in
            let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
            guard let bytes = Self.parse(parts.first ?? "") else {
                throw RouterError("trusted forwarder \(entry) is not an IP address or network")
            }
            var prefix = bytes.count * 8
            if parts.count == 2 {
                guard let value = Int(parts[1]), value >= 0, value <= bytes.count * 8 else {
                    throw RouterError("trusted forwarder \(entry) has a bad prefix length")
                }
                prefix = value
            }
            return Network(bytes: bytes, prefix: prefix)
        }
    }

    /// Whether `address` (as `SocketAddress.ipAddress` writes it) is in one of the networks.
    func contains(_ address: String?) -> Bool {
        guard !networks.isEmpty, let address, let bytes = Self.parse(address) else { return false }
        return networks.contains { network in
            guard network.bytes.count == bytes.count else { return false }
            var bits = network.prefix
            var index = 0
            while bits > 0 {
                let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
                if network.bytes[index] & mask != bytes[index] & mask { return false }
                bits -= 8
                index += 1
            }
            return true
        }
    }

    private static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
