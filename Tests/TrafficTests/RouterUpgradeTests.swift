import Foundation
import Synchronization
import Testing
@testable import Traffic

/// WebSockets through the router, with Python's `websockets` on both ends (Debian: python3-websockets).
@Suite(.serialized)
struct RouterUpgradeTests {
    /// A WebSocket color: answers every text message with `NAME:message`.
    struct WebSocketColor {
        let process: Process
        let port: Int

        static let script = """
        import asyncio, os, websockets
        async def echo(ws, *args):
            async for message in ws:
                await ws.send(os.environ["NAME"] + ":" + message)
        async def main():
            async with websockets.serve(echo, "127.0.0.1", int(os.environ["PORT"])):
                await asyncio.Future()
        asyncio.run(main())
        """

        static func start(name: String, in dir: String) throws -> WebSocketColor {
            let path = "\(dir)/ws_color.py"
            if !FileManager.default.fileExists(atPath: path) { try script.write(toFile: path, atomically: true, encoding: .utf8) }
            let port = freePort()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [path]
            process.environment = ["PORT": String(port), "NAME": name, "PATH": "/usr/bin:/bin"]
            try process.run()
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if let fd = try? connectTo(port: port) {
                    close(fd)
                    return WebSocketColor(process: process, port: port)
                }
                usleep(50_000)
            }
            process.terminate()
            throw TestFailure("WebSocket color \(name) did not start (is python3-websockets installed?)")
        }

        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// A WebSocket client process: each `say` sends one message and returns the reply, or "closed".
    final class WebSocketClient: Sendable {
        private let process: Process
        private let input: FileHandle
        private let output: FileHandle
        private let buffer = Mutex<[UInt8]>([])

        static let script = """
        import asyncio, sys, websockets
        async def main():
            try:
                async with websockets.connect(sys.argv[1], open_timeout=5) as ws:
                    print("open", flush=True)
                    loop = asyncio.get_running_loop()
                    while True:
                        line = await loop.run_in_executor(None, sys.stdin.readline)
                        if not line:
                            break
                        await ws.send(line.strip())
                        print(await asyncio.wait_for(ws.recv(), 5), flush=True)
            except websockets.ConnectionClosed:
                print("closed", flush=True)
            except Exception as error:
                print("error " + repr(error), flush=True)
        asyncio.run(main())
        """

        init(url: String, dir: String) throws {
            let path = "\(dir)/ws_client.py"
            if !FileManager.default.fileExists(atPath: path) { try Self.script.write(toFile: path, atomically: true, encoding: .utf8) }
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [path, url]
            let stdin = Pipe()
            let stdout = Pipe()
            process.standardInput = stdin
            process.standardOutput = stdout
            input = stdin.fileHandleForWriting
            output = stdout.fileHandleForReading
            try process.run()
        }

        /// The next line the client prints, waiting up to `timeout` seconds.
        func line(timeout: Double = 5) throws -> String {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let line = buffer.withLock({ bytes -> String? in
                    guard let newline = bytes.firstIndex(of: 10) else { return nil }
                    let text = String(decoding: bytes[0..<newline], as: UTF8.self)
                    bytes.removeFirst(newline + 1)
                    return text
                }) { return line }
                var pollfd = pollfd(fd: output.fileDescriptor, events: Int16(POLLIN), revents: 0)
                guard poll(&pollfd, 1, 50) > 0 else { continue }
                var chunk = [UInt8](repeating: 0, count: 4096)
                let count = chunk.withUnsafeMutableBytes { read(output.fileDescriptor, $0.baseAddress, $0.count) }
                guard count > 0 else { throw TestFailure("the WebSocket client exited") }
                buffer.withLock { $0 += chunk[0..<count] }
            }
            throw TestFailure("no line from the WebSocket client within \(timeout) s")
        }

        func say(_ text: String) throws -> String {
            try input.write(contentsOf: Data((text + "\n").utf8))
            return try line()
        }

        func stop() {
            try? input.close()
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    private func route(_ listen: Int, _ upstreams: [String: Int], live: String) -> AppRoute {
        AppRoute(listen: Endpoint(host: "127.0.0.1", port: listen), upstreams: upstreams.mapValues { Upstream(port: $0) },
                 weights: [live: 100])
    }

    @Test func aTunnelStaysOnItsColorAcrossASwitchUntilTheColorLeavesTheRoute() async throws {
        let dir = try TempDir()
        let blue = try WebSocketColor.start(name: "blue", in: dir.path)
        let green = try WebSocketColor.start(name: "green", in: dir.path)
        let router = Router(dataDir: dir.path)
        try await router.start()
        let listen = freePort()
        let both = ["blue": blue.port, "green": green.port]
        try await router.set(app: "shop", route: route(listen, both, live: "blue"))

        let first = try WebSocketClient(url: "ws://127.0.0.1:\(listen)/chat", dir: dir.path)
        let opened = try await blocking { try first.line() }
        #expect(opened == "open")
        #expect(try await blocking { try first.say("hello") } == "blue:hello")
        #expect(await router.tunnels(app: "shop") == ["blue": 1])
        // The drain waits for it: an open tunnel is a request in flight.
        #expect(await router.counters(app: "shop")["shop"]?["blue"]?.inFlight == 1)

        // Traffic switches: the open tunnel stays on blue, a new one goes to green.
        try await router.set(app: "shop", route: route(listen, both, live: "green"))
        #expect(try await blocking { try first.say("still there?") } == "blue:still there?")
        let second = try WebSocketClient(url: "ws://127.0.0.1:\(listen)/chat", dir: dir.path)
        #expect(try await blocking { try second.line() } == "open")
        #expect(try await blocking { try second.say("hi") } == "green:hi")

        // The drain is over and blue leaves the route: its tunnel is closed, green's is not.
        try await router.set(app: "shop", route: route(listen, ["green": green.port], live: "green"))
        #expect(try await blocking { try first.say("and now?") } == "closed")
        #expect(try await blocking { try second.say("still here") } == "green:still here")
        let deadline = Date().addingTimeInterval(2)
        while await router.counters(app: "shop")["shop"]?["blue"]?.inFlight != 0 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(await router.counters(app: "shop")["shop"]?["blue"]?.inFlight == 0)
        #expect(await router.tunnels(app: "shop") == ["green": 1])

        // The client closing ends the tunnel too.
        second.stop()
        let closed = Date().addingTimeInterval(2)
        while await router.tunnels(app: "shop") != [:] && Date() < closed { try await Task.sleep(for: .milliseconds(20)) }
        #expect(await router.tunnels(app: "shop") == [:])
        #expect(await router.counters(app: "shop")["shop"]?["green"]?.inFlight == 0)
        first.stop()
        await router.stop()
        blue.stop()
        green.stop()
        dir.remove()
    }

    @Test func anUpgradeTheColorDeclinesGoesOnAsHTTP() async throws {
        let setup = try await RouterStrictnessTests.Setup.start()
        let answer = try await setup.send("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n"
            + "GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(answer.components(separatedBy: "HTTP/1.1 200").count == 3, "\(answer.debugDescription)")
        let heads = setup.color.connections.flatMap(\.heads)
        #expect(heads.first?.contains("\r\nUpgrade: websocket") == true, "\(heads)")
        #expect(heads.first?.contains("\r\nConnection: upgrade") == true, "\(heads)")
        #expect(heads.last?.contains("Upgrade") == false, "\(heads)")
        await setup.stop()
    }
}
