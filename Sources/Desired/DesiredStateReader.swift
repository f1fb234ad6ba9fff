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
            let digest = try contentDigest(app: name, tree: tree)
            for (color, spec) in state.apps[name]!.environment.colors where spec.restartOnChange == true {
                state.apps[name]!.environment.colors[color]!.contentDigest = digest
            }
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
            let watching = open.filter { colors[$0]?.restartOnChange == true }
            let digest = watching.isEmpty ? nil : try contentDigest(app: app, tree: tree)
            if blob != lastBlob || !watching.isEmpty {
                var env = blob == nil ? nil : DesiredStateLoader.environment(tree: GitManifestTree(tree), app: app)
                for color in watching where env?.colors[color]?.restartOnChange == true { env?.colors[color]?.contentDigest = digest }
                for color in open where env?.colors[color] != colors[color] { open.remove(color) }
            }
            for color in open { result[color] = parent.hex }
            lastBlob = blob
            current = parent
        }
        return result
    }

    /// What a color with `restart_on_change` depends on: every file of `apps/<app>/` but environment.yaml,
    /// traffic.yaml and schema/ (paths and blob ids, hashed).
    func contentDigest(app: String, tree: CommitTree) throws -> String {
        let files = try tree.files(under: "apps/\(app)").filter {
            !["environment.yaml", "traffic.yaml"].contains($0.path) && !$0.path.hasPrefix("schema/")
        }
        let listing = files.map { "\($0.path)\t\($0.entry.id.hex)\n" }.sorted().joined()
        return String(ObjectID.hashBlob(Array(listing.utf8)).hex.prefix(16))
    }
}
