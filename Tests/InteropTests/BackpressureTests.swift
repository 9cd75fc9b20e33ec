import AsyncHTTPClient
import Dispatch
import HeraldQueue
import Hummingbird
import NIOCore
import Testing

@testable import Herald

@Suite(
    "Backpressure from the event loops to publishers", .serialized,
    .enabled(if: testPython != nil, "run through scripts/test, which installs python-socketio"))
struct BackpressureTests {
    @Test("past the broadcast backlog, direct publishing is refused and the consumer waits until the loop catches up")
    func backlogHoldsPublishersBack() async throws {
        var configuration = HeraldConfiguration()
        configuration.maxBroadcastBacklogBytes = 1000
        try await withGateway(configuration) { gateway, port in
            let listener = try PythonProcess(script: "listen.py", arguments: ["http://127.0.0.1:\(port)", "--event", "big", "--count", "2"])
            try await eventually { gateway.io.sockets.localSockets.count == 1 }
            let loop = await gateway.io.sockets.sockets[0].connection.eventLoop

            // The client's loop stalls, as an overloaded loop does: broadcasts queue up for it.
            let stall = DispatchSemaphore(value: 0)
            loop.execute { stall.wait() }
            let message = HeraldMessage(event: "big", arguments: ByteBuffer(string: "[\"\(String(repeating: "x", count: 2000))\"]"))
            try gateway.deliver(message)
            #expect(gateway.broadcastBacklogBytes > 1000)

            await #expect(throws: HeraldOverloadedError.self) {
                try await DirectPublisher(gateway: gateway).publish([message], bodies: [])
            }
            #expect(gateway.backpressure.refusedPublishes == 1)

            let queued = QueueMessage(
                id: "m-1", body: ByteBuffer(string: #"{"event":"big","data":"second"}"#), receipt: QueueReceipt(messageID: "m-1", handle: "h-1")
            )
            let handOff = Task { await gateway.handOff(queued) }
            try await eventually { gateway.backpressure.consumerWaits == 1 }

            stall.signal()
            // Handed off at once; deleted once its event was written to the loop.
            guard case .handedOffOnceSettled(let written) = await handOff.value else {
                Issue.record("the message was not handed off")
                return
            }
            #expect(await written.wait())
            try await eventually { gateway.broadcastBacklogBytes == 0 }
            let metrics = try await request(.GET, port: port, path: "/metrics").1
            #expect(metrics.contains("herald_publish_overloaded_total 1\n"))
            #expect(metrics.contains("herald_consumer_backpressure_waits_total 1\n"))
            #expect(metrics.contains("herald_broadcast_backlog_bytes 0"))
            let events = try #require(try await listener.result()["events"] as? [[Any]])
            #expect(events.count == 2)
            #expect(events.last?.first as? String == "second")
        }
    }

    @Test("the publish API answers an overloaded gateway with 503 and Retry-After")
    func overloadedPublishIs503() async throws {
        struct Overloaded: HeraldPublisher {
            func publish(_ messages: [HeraldMessage], bodies: [ByteBuffer]) async throws {
                throw HeraldOverloadedError(pendingBytes: 2000, limit: 1000)
            }
        }
        let gateway = try await HeraldGateway(configuration: HeraldConfiguration())
        let router = Router()
        gateway.addPublishRoutes(to: router, publisher: Overloaded())
        try await withApplication(router: router) { port in
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/emit")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: #"{"event":"e","data":1}"#))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let body = String(buffer: try await response.body.collect(upTo: 1 << 16))
            #expect(response.status.code == 503)
            #expect(response.headers.first(name: "retry-after") == "1")
            #expect(body.contains("overloaded"))
        }
    }
}
