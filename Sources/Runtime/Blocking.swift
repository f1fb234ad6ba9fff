import NIOPosix

/// Runs blocking work (a system call, a socket exchange, an SQLite transaction) on NIO's shared thread pool,
/// so the cooperative pool stays free and no thread is made per call.
public func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    do {
        return try await NIOThreadPool.singleton.runIfActive { work() }
    } catch {
        // The singleton pool is never shut down; should it be, run the work here rather than drop it.
        return work()
    }
}

/// `offThePool` for throwing work.
public func offThePool<T: Sendable>(throwing work: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive { try work() }
}
