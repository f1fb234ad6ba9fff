/// How much the router takes on at once. The defaults suit one host; every field is optional.
public struct RouterLimits: Sendable, Equatable {
    /// Client connections open at once, over every listen address. Connections beyond it are answered `503` and
    /// closed. Nil: half the file descriptors the process may open (each client connection may need one upstream).
    public var maxClientConnections: Int?
    /// A chunked request body up to this many bytes (framing included) is collected and checked whole, then sent
    /// to the color de-chunked with `Content-Length`. A longer one is streamed, still checked, with its chunked
    /// framing and `Connection: close`.
    public var maxCollectedChunkedBody: Int

    public init(maxClientConnections: Int? = nil, maxCollectedChunkedBody: Int = 64 * 1024) {
        self.maxClientConnections = maxClientConnections
        self.maxCollectedChunkedBody = maxCollectedChunkedBody
    }
}
