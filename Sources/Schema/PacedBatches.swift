import Foundation
import GRDB
import Manifest

extension SchemaEngine {
    /// Runs `body` over the rows of `table` with rowid in (`after`, `through`], a rowid range per transaction, paced
    /// like a backfill (`BackfillPacer`) so that other connections' writers wait about one batch. `body` gets the
    /// range and runs in the batch's transaction (where it also saves its cursor); returns the batches run.
    @discardableResult
    func inPacedBatches(of table: String, after: Int64, through: Int64,
                        _ body: (_ db: Database, _ after: Int64, _ upper: Int64) throws -> Void) throws -> Int {
        let q = Identifiers.quote(table)
        var pacer = BackfillPacer(options: options)
        var dataVersion = try queue.read { try Int.fetchOne($0, sql: "PRAGMA data_version") ?? 0 }
        var last = after
        var batches = 0
        while last < through {
            var began: TimeInterval = 0
            var work: TimeInterval = 0
            var foreign = false
            let rows = pacer.rows
            let upper = try write { db -> Int64 in
                var upper = through
                try db.inTransaction(.immediate) {
                    began = BackfillPacer.now()
                    let version = try Int.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) ?? 0
                    foreign = version != dataVersion
                    dataVersion = version
                    let hi = try Int64.fetchOne(db.cachedStatement(sql: "SELECT rowid FROM \(q) WHERE rowid > ? ORDER BY rowid LIMIT 1 OFFSET ?"),
                                                arguments: [last, rows - 1]) ?? through
                    upper = min(hi, through)
                    try body(db, last, upper)
                    work = BackfillPacer.now() - began
                    return .commit
                }
                return upper
            }
            let now = BackfillPacer.now()
            if foreign { pacer.sawForeignWrite(at: now) }
            last = upper
            batches += 1
            let pause = pacer.finished(work: work, held: now - began, at: now)
            if pause > 0, last < through { Thread.sleep(forTimeInterval: pause) }
        }
        return batches
    }
}
