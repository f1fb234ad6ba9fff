import Foundation
import GRDB
import Manifest

extension SchemaEngine {
    /// Operation note saying its kept-aside values were copied in batches before the rollback's transaction.
    static let keptInBatchesNote = "kept_in_batches"

    /// Before a rollback's transaction: copies what the rollback keeps aside (the values of columns added without
    /// `up`, which nothing could recompute) in paced batches. Triggers first carry every later write of those columns
    /// into the kept tables; then the existing rows are copied a rowid range at a time, and the rollback's
    /// transaction only drops the columns. Without this, the copy is one `INSERT ... SELECT` over the whole table
    /// under the write lock.
    func keepAsideInBatches(_ name: String) throws {
        guard let applied = try queue.read({ try History.find($0, name) }), applied.state.isInFlight else { return }
        let ops = applied.definition.operations
        for (index, op) in ops.enumerated() {
            guard case .addColumn(let add) = op, add.up == nil, add.column.generated == nil else { continue }
            let table = Self.tableNames(ops, before: index)[add.table.lowercased()] ?? add.table
            let kept = "_teal_kept_\(name)_\(index)"
            let noteKey = "\(index).\(Self.keptInBatchesNote)"
            // nil: nothing to copy in batches (the column is gone, or the table is empty: the triggers carry the rest).
            let range = try write { db -> (after: Int64, through: Int64)? in
                var range: (after: Int64, through: Int64)?
                try db.inTransaction(.immediate) {
                    let dialect = try self.dialect.session(db)
                    guard try dialect.column(table, add.column.name) != nil, try dialect.hasRowid(table),
                          try StoredOperationState(db, migration: name).value(noteKey) != "1" else { return .commit }
                    try dialect.mirrorKept(table: table, column: add.column.name, into: kept,
                                           triggerPrefix: Self.triggerPrefix(name) + "keep\(index)_")
                    let q = Identifiers.quote(table)
                    if let lo = try Int64.fetchOne(db, sql: "SELECT min(rowid) FROM \(q)"), let hi = try Int64.fetchOne(db, sql: "SELECT max(rowid) FROM \(q)"),
                       lo > Int64.min {
                        range = (lo - 1, hi)
                    } else if try Int64.fetchOne(db, sql: "SELECT min(rowid) FROM \(q)") == nil {
                        try StoredOperationState(db, migration: name).set(noteKey, "1")
                    }
                    return .commit
                }
                return range
            }
            guard let (after, through) = range else { continue }
            try inPacedBatches(of: table, after: after, through: through) { db, after, upper in
                try self.dialect.session(db).copyKept(table: table, column: add.column.name, into: kept, rowids: (after + 1)...upper)
                if upper >= through { try StoredOperationState(db, migration: name).set(noteKey, "1") }
            }
        }
    }
}
