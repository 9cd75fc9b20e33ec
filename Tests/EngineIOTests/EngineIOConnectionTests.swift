import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import EngineIO

/// The loop-confined handler around the state machine: where the delegate is called, and the
/// order in which calls from other threads take effect.
@Suite("Engine.IO connection on its event loop")
struct EngineIOConnectionTests {
    /// Records each delegate call and whether it came on the session's loop; closes the session
    /// when it receives `closeOn`.
    final class Recorder: EngineIOConnectionDelegate {
        let loop: any EventLoop
        let closeOn: String?
        let calls = Mutex<[String]>([])

        init(loop: any EventLoop, closeOn: String? = nil) {
            self.loop = loop
            self.closeOn = closeOn
        }

        var recorded: [String] { calls.withLock { $0 } }

        func connection(_ connection: EngineIOConnection, didReceive payload: EngineIOPayload) {
            let text = String(buffer: payload.bytes)
            record("message \(text)")
            if text == closeOn { connection.close(reason: .parseError) }
        }

        func connection(_ connection: EngineIOConnection, didCloseWith reason: EngineIOCloseReason) {
            record("closed: \(reason)")
        }

        private func record(_ call: String) {
            let place = loop.inEventLoop ? "on the loop" : "elsewhere"
            calls.withLock { $0.append("\(call), \(place)") }
        }
    }

    static func connection(on loop: any EventLoop, statistics: EngineIOStatistics = EngineIOStatistics()) -> EngineIOConnection {
        EngineIOConnection(
            id: RandomID.make(),
            handshake: EngineIOHandshakeRequest(uri: "/", query: [:], headers: [], remoteAddress: nil),
            webSocket: nil,
            eventLoop: loop,
            configuration: EngineIOConfiguration(),
            statistics: statistics,
            onFinalClose: { _ in }
        )
    }

    static func request(_ method: String, body: String? = nil, on loop: any EventLoop) -> EngineIOHTTPRequest {
        EngineIOHTTPRequest(method: method, uri: "/", query: [:], headers: [], body: body.map { ByteBuffer(string: $0) }, eventLoop: loop)
    }

    @Test("the delegate is called on the session's loop, and a message that makes it close the session stops the rest of its POST")
    func delegateOnLoopAndCloseDuringPost() async throws {
        let loop = NIOAsyncTestingEventLoop()
        let connection = Self.connection(on: loop)
        let recorder = Recorder(loop: loop, closeOn: "b")
        connection.start(delegate: recorder)
        let response = await connection.handlePost(Self.request("POST", body: "4a\u{1e}4b\u{1e}4c", on: loop))
        #expect(response.status == 200)
        #expect(recorder.recorded == ["message a, on the loop", "message b, on the loop", "closed: parse error, on the loop"])
        #expect(!connection.isOpen)
        await loop.shutdownGracefully()
    }

    @Test("frames sent from another thread are buffered in order and collected by the next poll")
    func sendsFromAnotherThreadReachThePoll() async throws {
        let loop = NIOAsyncTestingEventLoop()
        let connection = Self.connection(on: loop)
        connection.start(delegate: Recorder(loop: loop))
        connection.send(EngineIOFrame.message(ByteBuffer(string: "a")))
        connection.send([EngineIOFrame.message(ByteBuffer(string: "b")), EngineIOFrame.binary(ByteBuffer(bytes: [1, 2, 3]))])
        let response = await connection.handlePoll(Self.request("GET", on: loop))
        #expect(String(buffer: response.body) == "4a\u{1e}4b\u{1e}bAQID")
        #expect(connection.isOpen && connection.transportName == "polling")
        await loop.shutdownGracefully()
    }

    @Test("a broadcast from another thread reaches every polling session of the loop and leaves no backlog")
    func broadcastToPollingSessions() async throws {
        let loop = NIOAsyncTestingEventLoop()
        let statistics = EngineIOStatistics()
        let connections = [Self.connection(on: loop, statistics: statistics), Self.connection(on: loop, statistics: statistics)]
        for connection in connections { connection.start(delegate: Recorder(loop: loop)) }
        EngineIOConnection.broadcast([.message(ByteBuffer(string: "all")), .binary(ByteBuffer(bytes: [1, 2, 3]))], to: connections)
        for connection in connections {
            let response = await connection.handlePoll(Self.request("GET", on: loop))
            #expect(String(buffer: response.body) == "4all\u{1e}bAQID")
        }
        #expect(statistics.broadcastBacklog.pendingBytes == 0)
        await loop.shutdownGracefully()
    }
}
