import Git
import Manifest

/// Reads the desired state of a commit from a repository's object database.
public struct DesiredStateReader {
    public let repository: Repository
    /// How far back to look for the commit that set a color's spec.
    public var historyLimit = 1000

    public init(repository: Repository) { self.repository = repository }

    /// Resolves `revision`, then loads and validates every app at that commit.
    /// Throws `ManifestErrors` (file:line diagnostics) or `GitError`.
    public func read(revision: String) throws -> DesiredState {
        try read(commit: try repository.resolve(revision))
    }

    public func read(commit: ObjectID) throws -> DesiredState {
        let tree = try repository.tree(at: commit)
        var state = try DesiredStateLoader.load(tree: GitManifestTree(tree), commit: commit.hex).get()
        for name in state.apps.keys {
            state.apps[name]!.specCommits = try specCommits(app: name, colors: state.apps[name]!.environment.colors, from: commit)
        }
        return state
    }

    /// For each color, the oldest commit of an unbroken first-parent run, ending at `head`, in
    /// which the color's spec is what it is at `head`: the commit that set the spec.
    func specCommits(app: String, colors: [ColorName: ColorSpec], from head: ObjectID) throws -> [ColorName: String] {
        var result = colors.mapValues { _ in head.hex }
        var open = Set(colors.keys)
        var current = head
        var lastBlob = try repository.tree(at: head).entryID("apps/\(app)/environment.yaml")
        var steps = 0
        while !open.isEmpty, steps < historyLimit, let parent = try repository.commitInfo(current).parents.first {
            steps += 1
            let tree = try repository.tree(at: parent)
            let blob = try tree.entryID("apps/\(app)/environment.yaml")
            if blob != lastBlob {
                let env = blob == nil ? nil : DesiredStateLoader.environment(tree: GitManifestTree(tree), app: app)
                for color in open where env?.colors[color] != colors[color] { open.remove(color) }
            }
            for color in open { result[color] = parent.hex }
            lastBlob = blob
            current = parent
        }
        return result
    }
}
