import Foundation
import NIOCore
import SQS
import Testing

@testable import HeraldQueue

@Suite("Consumer building blocks")
struct UnitTests {
    @Test("The duplicate filter reports handed-off keys within the window and copies in progress")
    func duplicateFilter() {
        let filter = DuplicateFilter(window: .seconds(10))
        let start = ContinuousClock.now
        #expect(filter.begin("a", now: start) == .new)
        #expect(filter.begin("a", now: start) == .inProgress)
        filter.finish("a", handedOff: true, now: start)
        #expect(filter.begin("a", now: start + .seconds(5)) == .duplicate)
        #expect(filter.begin("a", now: start + .seconds(11)) == .new)
        filter.finish("a", handedOff: false, now: start + .seconds(11))
        #expect(filter.begin("a", now: start + .seconds(12)) == .new)
    }

    @Test("Backoff doubles from its base up to its maximum")
    func backoff() {
        let backoff = Backoff(base: .seconds(1), max: .seconds(10))
        #expect((1...6).map { backoff.delay(attempt: $0) } == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10)])
        let jittered = backoff.jitteredDelay(attempt: 3)
        #expect(jittered >= .seconds(2) && jittered <= .seconds(4))
    }

    @Test("A redrive policy is read with its count as a string or a number")
    func redrivePolicy() {
        #expect(
            SQSMessageSource.parseRedrivePolicy(#"{"deadLetterTargetArn":"arn:x","maxReceiveCount":"2"}"#)
                == DeadLetterPolicy(target: "arn:x", maxReceiveCount: 2))
        #expect(SQSMessageSource.parseRedrivePolicy(#"{"deadLetterTargetArn":"arn:x","maxReceiveCount":7}"#)?.maxReceiveCount == 7)
        #expect(SQSMessageSource.parseRedrivePolicy("nonsense") == nil)
    }

    @Test("The in-flight limiter grants what is free and wakes a waiting poller on release")
    func limiter() async throws {
        let limiter = InFlightLimiter(limit: 12)
        #expect(try await limiter.acquire(upTo: 10) == 10)
        #expect(try await limiter.acquire(upTo: 10) == 2)
        let waiting = Task { try await limiter.acquire(upTo: 10) }
        try await Task.sleep(for: .milliseconds(50))
        limiter.release(3)
        #expect(try await waiting.value == 3)
        let cancelled = Task { try await limiter.acquire(upTo: 1) }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
    }

    @Test("Receive errors are explained in operator words and only passing ones are retried at start")
    func receiveErrorAdvice() {
        let throttled = ReceiveErrorAdvice(SQSError(kind: .service, code: "ThrottlingException", statusCode: 400))
        #expect(throttled.isRetryable)
        #expect(throttled.operatorMessage.contains("throttling"))
        let credentials = ReceiveErrorAdvice(SQSError(kind: .service, code: "InvalidClientTokenId", statusCode: 403))
        #expect(!credentials.isRetryable)
        #expect(credentials.level == .error)
        #expect(credentials.operatorMessage.contains("credentials"))
        let missing = ReceiveErrorAdvice(SQSError(kind: .service, code: "QueueDoesNotExist", statusCode: 400))
        #expect(!missing.isRetryable)
        let unreachable = ReceiveErrorAdvice(SQSError(kind: .transport, message: "connection refused"))
        #expect(unreachable.isRetryable)
        #expect(unreachable.operatorMessage.contains("cannot be reached"))
    }
}
