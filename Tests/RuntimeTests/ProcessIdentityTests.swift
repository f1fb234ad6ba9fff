import Foundation
import Testing
@testable import Runtime

@Suite struct ProcessIdentityTests {
    private func startTime(_ line: String) -> UInt64? {
        Array(line.utf8).withUnsafeBufferPointer { ProcessIdentity.parseStartTime($0) }
    }

    /// Fields 3 to 22 of a stat line after `) `, the start time last.
    private let tail = "S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654321 1000000 200 18446744073709551615\n"

    @Test func theStartTimeIsField22CountedAfterTheCommandName() {
        #expect(startTime("1234 (python3) " + tail) == 987654321)
        // A command name may hold spaces and parentheses: fields are counted after the last `)`.
        #expect(startTime("1234 (a) b (c)) " + tail) == 987654321)
    }

    @Test func zombiesAndShortOrMalformedLinesHaveNoIdentity() {
        #expect(startTime("1234 (python3) Z" + tail.dropFirst(1)) == nil)
        #expect(startTime("1234 (python3) X" + tail.dropFirst(1)) == nil)
        #expect(startTime("1234 (python3) S 1 2 3\n") == nil)
        #expect(startTime("1234 python3 " + tail) == nil)
        #expect(startTime("1234 (python3) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98x7 1000\n") == nil)
        #expect(startTime("") == nil)
    }

    @Test func theIdentityOfThisProcessMatchesProcStat() throws {
        let text = try String(contentsOfFile: "/proc/self/stat", encoding: .utf8)
        let fields = text[text.index(after: text.lastIndex(of: ")")!)...].split(separator: " ")
        let identity = try #require(ProcessIdentity.of(pid: getpid()))
        #expect(identity.startTime == UInt64(fields[19]))
        #expect(identity.isAlive)
        #expect(!ProcessIdentity(pid: getpid(), startTime: identity.startTime + 1).isAlive)
        #expect(ProcessIdentity.of(pid: Int32.max) == nil)
    }
}
