import Foundation
import Planning
import State

extension ReconcilePipeline {
    /// Between plan and execute: the steps of suspended apps are taken out (`teal suspend`). A drift pass keeps
    /// them for an app suspended with drift repair; a new commit never changes a suspended app.
    func gate(_ plan: Plan, revision: Revision) -> (plan: Plan, held: [String]) {
        guard let suspensions = try? store.suspensions(), !suspensions.isEmpty else { return (plan, []) }
        var held = Set<String>()
        var kept = Plan()
        for planned in plan.steps {
            let app = planned.step.app
            guard let suspension = suspensions.holding(app) else {
                kept.steps.append(planned)
                continue
            }
            if !revision.isNew && suspension.repairDrift {
                kept.steps.append(planned)
            } else if revision.isNew {
                held.insert(app)
            }
        }
        for refusal in plan.refusals {
            if suspensions.holding(refusal.app) == nil { kept.refusals.append(refusal) } else if revision.isNew { held.insert(refusal.app) }
        }
        let apps = held.sorted()
        let key = apps.isEmpty ? nil : "\(revision.tip) \(apps.joined(separator: ","))"
        if let key, key != lastHeld {
            logger.notice("\(revision.tip.prefix(8)) is held: \(apps.joined(separator: ", ")) suspended")
            for app in apps {
                event(app: app, commit: revision.tip, kind: "held",
                      "\(revision.tip.prefix(8)) changes \(app), which is suspended: held until teal resume")
            }
        }
        lastHeld = key
        return (kept, apps)
    }

    /// Appends to the event log; an event that cannot be written is not worth failing a pass for.
    func event(app: String? = nil, color: String? = nil, commit: String? = nil, kind: String, _ message: String) {
        _ = try? store.addEvent(AgentEvent(app: app, color: color, commit: commit, kind: kind, message: message))
    }
}
