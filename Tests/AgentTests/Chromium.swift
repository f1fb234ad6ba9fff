import Foundation
import TestSupport

/// Headless Chromium from Debian (`chromium`), as a user's browser: the DOM after the page's script ran, and
/// screenshots kept under `.build/test-artifacts/` (not committed).
enum Chromium {
    static var path: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Where screenshots go: `.build/test-artifacts/<folder>/`.
    static func artifacts(_ folder: String) -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent(".build/test-artifacts/\(folder)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "chromium is not installed (apt-get install chromium; scripts/test.sh installs it)" }
    }

    /// The serialized DOM once `budget` ms of the page's own time have passed (its timers ran, its fetches answered).
    static func dumpDOM(_ url: String, budget: Int = 2500) throws -> String {
        try run(["--virtual-time-budget=\(budget)", "--dump-dom", url]).stdout
    }

    /// A PNG of the page at `url` after `budget` ms of its time; returns the file's size in bytes.
    @discardableResult
    static func screenshot(_ url: String, to file: String, height: Int = 1400, budget: Int = 1500) throws -> Int {
        try? FileManager.default.removeItem(atPath: file)
        _ = try run(["--virtual-time-budget=\(budget)", "--window-size=1280,\(height)", "--hide-scrollbars", "--screenshot=\(file)", url])
        return ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? NSNumber)?.intValue ?? 0
    }

    private static func run(_ arguments: [String]) throws -> (stdout: String, stderr: String) {
        guard let path else { throw Missing() }
        let profile = NSTemporaryDirectory() + "teal-chromium-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                             "--disable-extensions", "--user-data-dir=\(profile)"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let errData = LockedBox()
        DispatchQueue.global().async { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (String(decoding: stdout, as: UTF8.self), String(decoding: errData.get(), as: UTF8.self))
    }
}

final class LockedBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// Counts occurrences of `needle` in `text`.
func occurrences(of needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }
