import Foundation

/// Why a color or the router could not be started, probed or stopped.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }
}
