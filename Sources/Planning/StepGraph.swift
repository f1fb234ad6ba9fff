import Manifest

/// Steps of one app with "must happen before" edges, ordered by a stable topological sort.
struct StepGraph {
    enum Node: Hashable, Comparable, CustomStringConvertible {
        case stop(ColorName), start(ColorName), await(ColorName), route, rollback, reopen, startMigration(Int), completeMigration(Int)

        /// Among ready steps, which a person expects first.
        var rank: (Int, Int) {
            switch self {
            case .stop: (0, 0)
            case .rollback: (1, 0)
            case .reopen: (1, 1)
            case .startMigration(let i): (2, 2 * i)
            case .completeMigration(let i): (2, 2 * i + 1)
            case .start(let c): (3, c == .blue ? 0 : 1)
            case .await(let c): (3, c == .blue ? 2 : 3)
            case .route: (4, 0)
            }
        }

        static func < (a: Node, b: Node) -> Bool { a.rank < b.rank }

        var description: String {
            switch self {
            case .stop(let c): "stop \(c)"
            case .start(let c): "start \(c)"
            case .await(let c): "wait for \(c)"
            case .route: "switch traffic"
            case .rollback: "roll back the migration in flight"
            case .reopen: "reopen the last completed migration"
            case .startMigration(let i): "start migration #\(i + 1)"
            case .completeMigration(let i): "complete migration #\(i + 1)"
            }
        }
    }

    let app: String
    private var steps: [Node: PlannedStep] = [:]
    private var before: [Node: Set<Node>] = [:]  // node -> nodes that must run first

    init(app: String) { self.app = app }

    mutating func add(_ node: Node, _ step: PlannedStep) { steps[node] = step }

    func has(_ node: Node) -> Bool { steps[node] != nil }

    /// `first` must run before `then`; ignored when either is not part of the plan.
    mutating func edge(_ first: Node, before then: Node) {
        guard has(first), has(then) else { return }
        before[then, default: []].insert(first)
    }

    /// A stop that had traffic is ranked after the switch that took traffic off it.
    private func rank(_ node: Node) -> (Int, Int) {
        if case .stop = node, before[node]?.contains(.route) == true { return (5, node.rank.1) }
        return node.rank
    }

    func ordered() throws -> [PlannedStep] {
        var done: Set<Node> = []
        var result: [PlannedStep] = []
        while done.count < steps.count {
            let ready = steps.keys.filter { !done.contains($0) && (before[$0] ?? []).isSubset(of: done) }
            guard let next = ready.min(by: { (rank($0).0, rank($0).1, $0.description) < (rank($1).0, rank($1).1, $1.description) }) else {
                let stuck = steps.keys.filter { !done.contains($0) }.sorted().map { node in
                    "\(steps[node]!.step.summary) waits for " + (before[node] ?? []).subtracting(done).sorted().map { steps[$0]!.step.summary }.joined(separator: " and ")
                }
                throw Refusal(app: app, message: "no order of steps keeps every invariant: " + stuck.joined(separator: "; "),
                              hint: "split the change into several commits: first move traffic to a color that already runs, "
                                + "then change the other color, then the schema")
            }
            done.insert(next)
            result.append(steps[next]!)
        }
        return result
    }
}
