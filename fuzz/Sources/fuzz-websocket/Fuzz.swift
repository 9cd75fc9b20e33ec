import FuzzSupport
import NIOCore
import NIOEmbedded

@testable import EngineIO

/// Bytes arriving on an Engine.IO WebSocket (both revisions, by the first byte): the frame
/// decoder, the aggregator, the handler and the session, as a client's socket feeds them.
final class Sink: EngineIOConnectionDelegate {
    func connection(_ connection: EngineIOConnection, didReceive payload: EngineIOPayload) {}
    func connection(_ connection: EngineIOConnection, didCloseWith reason: EngineIOCloseReason) {}
}

enum Fixture {
    static let server: EngineIOServer = {
        var configuration = EngineIOConfiguration()
        configuration.allowEIO3 = true
        configuration.maxHTTPBufferSize = 64 * 1024
        return EngineIOServer(configuration: configuration) { _ in Sink() }
    }()
}

@_cdecl("fuzz_websocket_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in
        guard !bytes.isEmpty else { return }
        let version = bytes[0] & 1 == 0 ? "4" : "3"
        let channel = EmbeddedChannel()
        do {
            try Fixture.server.attachWebSocket(to: channel, uri: "/engine.io/?EIO=\(version)&transport=websocket", headers: [])
            try channel.writeInbound(ByteBuffer(bytes: bytes.dropFirst()))
        } catch {
            // A frame the decoder refuses closes the channel: that is the expected answer.
        }
        channel.embeddedEventLoop.run()
        _ = try? channel.finish()
    }
}
