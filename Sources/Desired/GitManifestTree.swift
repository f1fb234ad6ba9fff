import Git
import Manifest

/// A commit's tree as the manifest loader sees it.
public struct GitManifestTree: ManifestTree {
    public let tree: CommitTree

    public init(_ tree: CommitTree) { self.tree = tree }

    public func entries(of directory: String) throws -> [(name: String, isDirectory: Bool)]? {
        try tree.entries(directory)?.map { ($0.name, $0.kind == .directory) }
    }

    public func contents(of path: String) throws -> [UInt8]? { try tree.contents(path) }

    public func contentID(of path: String) throws -> String? { try tree.entryID(path)?.hex }
}
