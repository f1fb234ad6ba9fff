import Agent
import ArgumentParser
import Foundation
import Manifest
import Reconcile
import State

/// `teal plan`: what reconcile would do now, and why.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the steps reconcile would run now, with the reason for each.",
        discussion: "Observes what runs (processes, health, router, databases) exactly as apply does, and changes nothing; "
            + "a data dir that does not exist yet is planned from nothing running. Exit status 1 when the plan is refused.")

    @OptionGroup var repo: RepoOptions
    @OptionGroup var data: DataDirOption
    @OptionGroup var signatures: VerifyOptions

    @Flag(help: "Print the plan as JSON.")
    var json = false

    func run() async throws {
        try repo.checkLocal()
        let drivers = ReconcileDrivers.standard(repository: repo.path, branch: repo.branch, dataDir: data.path, remote: repo.remote,
                                                signatures: signatures.verify == nil ? nil : signatures.policy)
        let store = try data.existingStore() ?? StateStore.inMemory()
        let pipeline = ReconcilePipeline(drivers: drivers, store: store, configuration: .init(verify: signatures.verify))
        let commit: String, plan: Planning.Plan
        do {
            (commit, plan) = try await pipeline.plan()
        } catch let errors as ManifestErrors {
            DesiredInput.report(errors, revision: repo.branch)
            throw ExitCode(1)
        } catch let failure as ReconcileFailure {
            throw CLIError(failure.description)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(plan), as: UTF8.self))
        } else {
            print("Plan for \(commit.prefix(8)) (\(repo.branch)):")
            if plan.steps.isEmpty && plan.refusals.isEmpty { print("  nothing to do: the observed state matches") }
            for (i, step) in plan.steps.enumerated() {
                print("  \(i + 1). \(step.step.summary)")
                print("     because \(step.reason)")
            }
            for note in (try? Self.unrestarted(repository: repo.open(), store: store, tip: commit, plan: plan)) ?? [] {
                print("  note: \(note)")
            }
            for refusal in plan.refusals { Console.error(refusal.description) }
        }
        if !plan.refusals.isEmpty { throw ExitCode(1) }
    }
}

import Planning
import Git

extension PlanCommand {
    /// Colors that keep running an older copy of their app folder although files in it changed: nothing restarts
    /// them, because a color's spec (release, command, env, schema) did not change. Says so, and what to change.
    static func unrestarted(repository: Repository, store: StateStore, tip: String, plan: Planning.Plan) throws -> [String] {
        guard let tipID = ObjectID(hex: tip) else { return [] }
        let now = try repository.tree(at: tipID)
        var notes: [String] = []
        for record in try store.colors() where record.handle != nil {
            let touched = plan.steps.contains { $0.step.app == record.app && ($0.step.color == record.color || $0.step.color == nil) }
            guard !touched, let specID = ObjectID(hex: record.specCommit), specID != tipID else { continue }
            let folder = "apps/\(record.app)"
            let then = try repository.tree(at: specID)
            guard try now.entryID(folder) != then.entryID(folder) else { continue }
            let before = Dictionary(try then.files(under: folder).map { ($0.path, $0.entry.id) }, uniquingKeysWith: { a, _ in a })
            let after = Dictionary(try now.files(under: folder).map { ($0.path, $0.entry.id) }, uniquingKeysWith: { a, _ in a })
            let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] && !["environment.yaml", "traffic.yaml"].contains($0) }
                .filter { !$0.hasPrefix("schema/") }.sorted()
            guard !changed.isEmpty else { continue }
            let shown = changed.prefix(5).map { "\(folder)/\($0)" }.joined(separator: ", ") + (changed.count > 5 ? ", …" : "")
            notes.append("\(record.app) \(record.color) does not restart: \(shown) changed since its spec was set at "
                + "\(record.specCommit.prefix(8)), but a color's spec is its release, command, env and schema, and it runs "
                + "the copy of \(folder)/ from that commit; change colors.\(record.color).release in \(folder)/environment.yaml to restart it")
        }
        return notes
    }
}
