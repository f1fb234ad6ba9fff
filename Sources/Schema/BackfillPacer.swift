import Foundation

/// Decides how many rows the next backfill transaction takes and how long the backfill then leaves the
/// database to other writers.
///
/// A writer of another connection that finds the lock taken waits in its busy handler. SQLite's default one
/// (`sqlite3_busy_timeout`, which GRDB, Python's `sqlite3` and most drivers install) sleeps 1, 2, 5, 10, 15,
/// 20, 25, 25, 25, 50, 50 ms, then 100 ms at a time, so its attempts come 1, 3, 8, 18, 33, 53, … ms after the
/// first; it is not woken when the lock is released. A writer blocked for at most `d` when a batch commits is
/// certain to make an attempt during the gap that follows if that gap is longer than the widest step between
/// its attempts up to `d`: 2 ms after a batch of 2 ms, 5 ms after one of 8 ms. Such a writer waits about one
/// batch, whatever the phase; with gaps shorter than that it can sleep past many batches in a row.
///
/// Those gaps halve the backfill's speed, so they are left only while other connections write:
/// * **active** — `PRAGMA data_version` showed a commit by another connection in the last second (or during
///   a short look before the first batch): a gap after every batch;
/// * **quiet** — otherwise batches follow each other, with a 26 ms gap after at most 125 ms of lock time; a
///   writer arriving then waits up to about 130 ms once, after which the backfill is active again. A quiet
///   backfill also checkpoints the WAL less often (about every `quietFrames` frames instead of 800), so the
///   arriving writer's first commit may also run a checkpoint of up to that many frames.
struct BackfillPacer {
    /// When the default busy handler's attempts come, counted from the first one.
    static let attempts: [TimeInterval] = [0.001, 0.003, 0.008, 0.018, 0.033, 0.053, 0.078, 0.103, 0.128, 0.178, 0.228]

    /// The gap that a writer blocked for at most `held` is sure to make an attempt in.
    static func gap(afterHolding held: TimeInterval) -> TimeInterval {
        var previous: TimeInterval = 0
        var widest: TimeInterval = 0
        for attempt in attempts {
            widest = max(widest, attempt - previous)
            if attempt >= held { return widest }
            previous = attempt
        }
        return 0.1
    }

    /// How long a look for other writers before the first batch lasts.
    static let probe: TimeInterval = 0.02
    /// Added to every gap for a writer's late wake-up and its own transaction.
    static let margin: TimeInterval = 0.001
    /// How long after another connection's commit the backfill stays active.
    static let activeWindow: TimeInterval = 1
    /// Lock time a quiet backfill keeps below before leaving a gap: just under the busy handler's attempt at
    /// 128 ms, so the gap is 25 ms (about 17 % of the time, the lowest share any span gives).
    static let quietSpan: TimeInterval = 0.125

    let maxRows: Int
    let minRows: Int
    let targetDuration: TimeInterval
    let minPause: TimeInterval
    let yields: Bool

    /// Rows for the next batch.
    private(set) var rows: Int
    private var lastForeignWrite: TimeInterval?
    private var heldSinceGap: TimeInterval = 0

    init(options: SchemaEngineOptions) {
        maxRows = options.batchSize
        minRows = min(options.batchSize, 100)
        targetDuration = options.batchDuration
        minPause = options.batchPause
        yields = options.yieldsToWriters
        rows = options.batchSize
    }

    /// WAL frames a quiet backfill lets build up between its checkpoints.
    static let quietFrames = 4000

    /// True while other connections write (see the type's comment).
    func isActive(at now: TimeInterval) -> Bool {
        lastForeignWrite.map { now - $0 < Self.activeWindow } ?? false
    }

    /// Records that another connection committed at `now`.
    mutating func sawForeignWrite(at now: TimeInterval) { lastForeignWrite = now }

    /// Records a batch: `work` is the time its statements took, `held` the time it held the write lock
    /// (including its commit). Returns how long to pause before the next one.
    mutating func finished(work: TimeInterval, held: TimeInterval, at now: TimeInterval) -> TimeInterval {
        if work > targetDuration, rows > minRows {
            rows = max(minRows, Int(Double(rows) * targetDuration / work))
        } else if work < targetDuration / 2, rows < maxRows {
            rows = min(maxRows, rows * 2)
        }
        guard yields else { return minPause }
        if let last = lastForeignWrite, now - last < Self.activeWindow {
            heldSinceGap = 0
            return max(minPause, Self.gap(afterHolding: held) + Self.margin)
        }
        heldSinceGap += held
        // Pause before the next batch could carry a blocked writer past the busy handler's attempt at 128 ms,
        // after which it sleeps 50 ms at a time and would need a gap twice as long.
        guard heldSinceGap + held >= Self.quietSpan else { return minPause }
        let pause = Self.gap(afterHolding: heldSinceGap) + Self.margin
        heldSinceGap = 0
        return max(minPause, pause)
    }

    /// Records time the backfill spent off the lock for other reasons (a checkpoint): long enough, it counts as
    /// the gap a quiet backfill owes.
    mutating func idled(_ time: TimeInterval) {
        if time >= Self.gap(afterHolding: heldSinceGap) + Self.margin { heldSinceGap = 0 }
    }

    /// Seconds on a monotonic clock.
    static func now() -> TimeInterval { TimeInterval(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
