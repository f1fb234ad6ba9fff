import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Runtime

/// A free TCP port on 127.0.0.1, chosen as teal chooses a color's port.
public func freeLoopbackPort() -> Int {
    (try? FreePort.pick()) ?? 0
}

/// Small HTTP calls for tests, through URLSession (keep-alive connections are reused).
public enum HTTP {
    public struct Reply: Sendable {
        public var status: Int
        public var body: Data
        public var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
    }

    static let session: URLSession = {
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = 5
        config.httpMaximumConnectionsPerHost = 8
        return URLSession(configuration: config)
    }()

    /// nil when the request could not be made (connection refused, timeout).
    public static func request(_ url: String, method: String = "GET", json: [String: String]? = nil) async -> Reply? {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let json {
            request.httpBody = try? JSONSerialization.data(withJSONObject: json)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        guard let (data, response) = try? await session.data(for: request), let http = response as? HTTPURLResponse else { return nil }
        return Reply(status: http.statusCode, body: data)
    }

    /// Polls `condition` every `every` until it holds or `timeout` passes; returns whether it held.
    public static func eventually(timeout: TimeInterval, every: TimeInterval = 0.05, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(nanoseconds: UInt64(every * 1_000_000_000))
        }
        return await condition()
    }
}
