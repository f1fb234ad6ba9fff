import ArgumentParser
import Dispatch
import Foundation
import Traffic

/// `teal router`: the traffic router of a data dir, in the foreground (teal starts it detached when needed).
struct RouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Run the HTTP router of a data dir in the foreground.",
        discussion: "teal apply starts it detached when it is not running. It serves each app's listen address, "
            + "takes orders on <data-dir>/router.sock and keeps its routes in <data-dir>/routes.json.")

    @OptionGroup var data: DataDirOption

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let router = Router(dataDir: data.path)
        do {
            try await router.start()
        } catch let error as RouterError {
            throw CLIError(error.description)
        }
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { Task { await router.stop() } }
            source.resume()
            sources.append(source)
        }
        await router.waitUntilStopped()
        sources.forEach { $0.cancel() }
    }
}
