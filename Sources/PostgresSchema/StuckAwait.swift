import Foundation
import Synchronization

/// Awaits work that may never finish, such as a statement on a connection the server has ended (seen about
/// one time in seven with a server restarted in the middle of a backfill: the socket was gone and the
/// statement's await never returned). `stuck` is checked once per `interval` while the work runs. Once it has
/// held `strikes` times in a row, the work is cancelled and left behind, and the caller gets `giveUp()`'s error
/// at once. The check is a property of the connection, not a time limit, so a long index build on a live
/// connection is never cut.
enum StuckAwait {
    static func run<T: Sendable>(interval: Duration = .seconds(1), strikes: Int = 3,
                                 stuck: @escaping @Sendable () -> Bool,
                                 giveUp: @escaping @Sendable () -> any Error,
                                 _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let outcome = Outcome<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                outcome.wait(continuation)
                let worker = Task {
                    do { outcome.finish(.success(try await work())) } catch { outcome.finish(.failure(error)) }
                }
                let watch = Task {
                    var count = 0
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        if Task.isCancelled { return }
                        count = stuck() ? count + 1 : 0
                        if count >= strikes {
                            worker.cancel()
                            outcome.finish(.failure(giveUp()))
                            return
                        }
                    }
                }
                outcome.onFinish { worker.cancel(); watch.cancel() }
            }
        } onCancel: {
            outcome.finish(.failure(CancellationError()))
        }
    }

    /// The one result the caller gets: the first of the work's, the watch's or cancellation's.
    private final class Outcome<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var result: Result<T, any Error>?
            var cleanup: (@Sendable () -> Void)?
        }
        private let state = Mutex(State())

        func wait(_ continuation: CheckedContinuation<T, any Error>) {
            let early = state.withLock { state -> Result<T, any Error>? in
                if let result = state.result { return result }
                state.continuation = continuation
                return nil
            }
            if let early { continuation.resume(with: early) }
        }

        /// Runs `cleanup` once the outcome is known (at once when it already is).
        func onFinish(_ cleanup: @escaping @Sendable () -> Void) {
            let now = state.withLock { state -> Bool in
                if state.result != nil { return true }
                state.cleanup = cleanup
                return false
            }
            if now { cleanup() }
        }

        func finish(_ result: Result<T, any Error>) {
            let (continuation, cleanup) = state.withLock { state -> (CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
                guard state.result == nil else { return (nil, nil) }
                state.result = result
                defer { state.continuation = nil; state.cleanup = nil }
                return (state.continuation, state.cleanup)
            }
            continuation?.resume(with: result)
            cleanup?()
        }
    }
}
