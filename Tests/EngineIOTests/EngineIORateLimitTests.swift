import NIOCore
import Testing

@testable import EngineIO

@Suite("Rate limit token bucket")
struct EngineIORateLimitTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let limit: EngineIORateLimit
        /// Takes at these milliseconds after the start, and whether each gets a token.
        let takes: [(milliseconds: Int64, admitted: Bool)]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "a full bucket gives its burst at once, then nothing",
            limit: EngineIORateLimit(burst: 3, perSecond: 1),
            takes: [(0, true), (0, true), (0, true), (0, false), (0, false)]),
        Case(
            name: "an empty bucket refills at its rate",
            limit: EngineIORateLimit(burst: 1, perSecond: 4),
            takes: [(0, true), (100, false), (250, true), (400, false), (500, true)]),
        Case(
            name: "refilling stops at the burst",
            limit: EngineIORateLimit(burst: 2, perSecond: 10),
            takes: [(0, true), (0, true), (10_000, true), (10_000, true), (10_000, false)]),
        Case(
            name: "refused takes cost nothing",
            limit: EngineIORateLimit(burst: 1, perSecond: 1),
            takes: [(0, true), (200, false), (400, false), (600, false), (1_000, true)]),
    ]

    @Test("takes", arguments: cases)
    func takes(_ testCase: Case) {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var bucket = EngineIOTokenBucket(testCase.limit, now: start)
        let answers = testCase.takes.map { bucket.take(testCase.limit, now: start + .milliseconds($0.milliseconds)) }
        #expect(answers == testCase.takes.map(\.admitted))
    }

    @Test("a bucket can be forgotten once it refilled to its burst")
    func full() {
        let limit = EngineIORateLimit(burst: 10, perSecond: 2)
        let start = NIODeadline.uptimeNanoseconds(0)
        var bucket = EngineIOTokenBucket(limit, now: start)
        _ = bucket.take(limit, now: start)
        #expect(!bucket.isFull(limit, now: start + .seconds(4)))
        #expect(bucket.isFull(limit, now: start + .seconds(5)))
    }
}
