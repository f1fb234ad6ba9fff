import Foundation
import Manifest

/// `sql`: runs `up` at start (or at complete with `onComplete`) and `down` at rollback. Not dual-version safe:
/// the engine cannot know what the statements do to either shape.
struct RawSQLOperation: SchemaOperation {
    let op: RawSQL
    var kind: String { "sql" }

    func validate(_ model: ShapeModel) throws {
        if op.up.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw SchemaError("sql.up is empty") }
    }

    func start(_ ctx: OperationContext) throws {
        if !op.onComplete { try ctx.dialect.execute(op.up) }
    }

    func complete(_ ctx: OperationContext) throws {
        if op.onComplete { try ctx.dialect.execute(op.up) }
    }

    func rollback(_ ctx: OperationContext) throws {
        if !op.onComplete, let down = op.down { try ctx.dialect.execute(down) }
    }
}
