import Agent
import Drivers
import Foundation
import Git
import Manifest
import Runtime
import Testing

extension RuntimeTests {
    private func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "teal-launch-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Removes a folder with read-only parts; chmod follows symlinks, so they are left alone.
    private func removeReadOnly(_ dir: String) {
        if let items = FileManager.default.enumerator(atPath: dir) {
            chmod(dir, 0o755)
            while let item = items.nextObject() as? String {
                var info = stat()
                if lstat("\(dir)/\(item)", &info) == 0, info.st_mode & S_IFMT != S_IFLNK { chmod("\(dir)/\(item)", 0o755) }
            }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func envFilesReadCRLFAndQuotedValues() throws {
        let dir = try scratch()
        defer { removeReadOnly(dir) }
        let file = "\(dir)/crlf.env"
        try "# secrets\r\nA=1\r\nexport B=\"two words\"\r\nC='three'\r\n\r\nD=\"unbalanced'\r\nE = spaced \r\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let values = try EnvFile.read(file, app: "shop", color: .blue)
        #expect(values == ["A": "1", "B": "two words", "C": "three", "D": "\"unbalanced'", "E": "spaced"])
    }

    @Test func aMalformedEnvFileLineIsReportedByNumberOnly() throws {
        let dir = try scratch()
        defer { removeReadOnly(dir) }
        for (name, text, line) in [("badkey", "OK=1\nsk-live-hunter2 = x\n", 2), ("noequals", "hunter2hunter2\n", 1),
                                   ("spaces", "OK=1\r\n\r\nDB PASSWORD hunter2=x\r\n", 3)] {
            let file = "\(dir)/\(name).env"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            #expect {
                try EnvFile.read(file, app: "shop", color: .blue)
            } throws: { error in
                "\(error)" == "\(file):\(line): expected KEY=VALUE"
            }
        }
    }

    @Test func aRelativeCommandMayNotLeaveTheFolderThroughASymlink() throws {
        let dir = try scratch()
        defer { removeReadOnly(dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/sub", withIntermediateDirectories: true)
        try "#!/bin/sh\n".write(toFile: "\(dir)/sub/run.sh", atomically: true, encoding: .utf8)
        chmod("\(dir)/sub/run.sh", 0o555)
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/bin", withDestinationPath: "/usr/bin")
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/tools", withDestinationPath: "sub")
        let launcher = ColorLauncher(dataDir: dir)

        #expect {
            try launcher.resolve(command: ["./bin/env"], in: dir, app: "shop", color: .blue)
        } throws: { error in
            "\(error)".contains("leaves the app folder")
        }
        #expect(try launcher.resolve(command: ["./tools/run.sh", "x"], in: dir, app: "shop", color: .blue) == ["\(dir)/tools/run.sh", "x"])
    }

    /// A git repository whose commits are made with the git CLI from raw trees.
    private struct TreeRepo {
        let dir: String

        init() throws {
            dir = NSTemporaryDirectory() + "teal-tree-\(UUID().uuidString.prefix(8))"
            try run(["git", "init", "-q", "--bare", dir])
        }

        func git(_ args: [String], input: Data? = nil) throws -> String {
            try run(["git", "-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"] + args, input: input)
        }

        func blob(_ text: String) throws -> String {
            try git(["hash-object", "-w", "--stdin"], input: Data(text.utf8))
        }

        /// Writes a tree as given, without git's own checks on entry names.
        func tree(_ entries: [(mode: String, name: String, id: String)]) throws -> String {
            var raw = Data()
            for entry in entries.sorted(by: { $0.name < $1.name }) {
                raw += Data("\(entry.mode) \(entry.name)\0".utf8)
                raw += Data(stride(from: 0, to: 40, by: 2).map { offset -> UInt8 in
                    let start = entry.id.index(entry.id.startIndex, offsetBy: offset)
                    return UInt8(entry.id[start..<entry.id.index(start, offsetBy: 2)], radix: 16)!
                })
            }
            return try git(["hash-object", "-t", "tree", "--literally", "-w", "--stdin"], input: raw)
        }

        /// A commit whose tree holds `entries` as `apps/shop/`.
        func commit(shop entries: [(mode: String, name: String, id: String)]) throws -> String {
            let shop = try tree(entries)
            let apps = try tree([("40000", "shop", shop)])
            return try git(["commit-tree", try tree([("40000", "apps", apps)]), "-m", "shop"])
        }

        func link(_ name: String, to target: String) throws -> (mode: String, name: String, id: String) {
            ("120000", name, try blob(target))
        }
    }

    @Test func theMaterializerRefusesSymlinksAndNamesThatLeaveTheAppFolder() throws {
        let repo = try TreeRepo()
        let dataDir = try scratch()
        defer {
            removeReadOnly(dataDir)
            try? FileManager.default.removeItem(atPath: repo.dir)
        }
        let script = try repo.blob("#!/bin/sh\necho ok\n")
        let sub = try repo.tree([("100755", "run.sh", script)])
        let materializer = Materializer(repository: try Repository(path: repo.dir), dataDir: dataDir)

        let good = try repo.commit(shop: [("40000", "sub", sub), try repo.link("current", to: "sub"),
                                          try repo.link("self", to: "sub/../current/run.sh")])
        let folder = try materializer.folder(app: "shop", commit: good)
        #expect(FileManager.default.isExecutableFile(atPath: "\(folder)/current/run.sh"))

        let nested = try repo.tree([try repo.link("c", to: ".")])
        let refused: [(String, [(mode: String, name: String, id: String)])] = [
            ("apps/shop/bin", [try repo.link("bin", to: "/usr/bin")]),
            ("apps/shop/data", [try repo.link("data", to: "../../..")]),
            ("apps/shop/up", [("40000", "sub", nested), try repo.link("up", to: "sub/c/../..")]),
            ("'..'", [("100644", "..", script)]),
            ("'.'", [("100644", ".", script)]),
            ("'a/b'", [("100644", "a/b", script)]),
            ("two entries named 'x'", [try repo.link("x", to: "../../../../.."), ("40000", "x", sub)]),
            // libgit2 itself refuses to parse an empty name.
            ("can't parse filename", [("100644", "", script)]),
        ]
        for (named, entries) in refused {
            let commit = try repo.commit(shop: entries)
            #expect {
                try materializer.folder(app: "shop", commit: commit)
            } throws: { error in
                "\(error)".contains(named)
            }
            #expect(!FileManager.default.fileExists(atPath: RuntimePaths(dataDir: dataDir).appFolder(app: "shop", commit: commit)))
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "\(dataDir)/apps/shop")
        #expect(leftovers == [good], "\(leftovers)")
    }

    @Test func workingCopiesNoColorRunsArePrunedWithTheirReadOnlyFiles() throws {
        let repo = try TreeRepo()
        let dataDir = try scratch()
        defer {
            removeReadOnly(dataDir)
            try? FileManager.default.removeItem(atPath: repo.dir)
        }
        let materializer = Materializer(repository: try Repository(path: repo.dir), dataDir: dataDir)
        let script = try repo.blob("#!/bin/sh\necho ok\n")
        let sub = try repo.tree([("100755", "run.sh", script)])
        let old = try materializer.folder(app: "shop", commit: try repo.commit(shop: [("40000", "sub", sub)]))
        let current = try materializer.folder(app: "shop", commit: try repo.commit(shop: [("100644", "app.py", script)]))
        let other = try materializer.folder(app: "blog", commit: try repo.commit(shop: [("100644", "app.py", script)]))
        let partial = "\(dataDir)/apps/shop/\(URL(fileURLWithPath: current).lastPathComponent).partial-99"
        try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true)

        let removed = Materializer.prune(dataDir: dataDir, keeping: [current, other])
        #expect(removed == [old])
        #expect(!FileManager.default.fileExists(atPath: old))
        #expect(FileManager.default.fileExists(atPath: "\(current)/app.py"))
        #expect(FileManager.default.fileExists(atPath: other))
        #expect(FileManager.default.fileExists(atPath: partial))
    }
}
