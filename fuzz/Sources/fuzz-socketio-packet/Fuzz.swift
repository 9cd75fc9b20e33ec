import EngineIO
import FuzzSupport
import NIOCore

@testable import SocketIO

/// Socket.IO packets with binary attachments: the input is split into Engine.IO messages at
/// each 0xFF byte; a message whose first byte is odd is binary, else text. The first byte of the
/// input picks the parser (json or msgpack).
@_cdecl("fuzz_socketio_packet_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in
        guard !bytes.isEmpty else { return }
        let parser: SocketIOParser = bytes[0] & 1 == 0 ? .json : .msgpack
        var decoder = SocketIODecoder(maxAttachments: 10, parser: parser)
        for message in bytes.dropFirst().split(separator: 0xFF, omittingEmptySubsequences: false) {
            guard let kind = message.first else { continue }
            let data = ByteBuffer(bytes: message.dropFirst())
            let payload: EngineIOPayload = kind & 1 == 1 ? .binary(data) : .text(data)
            do {
                if let packet = try decoder.decode(payload) {
                    // What was read is written again and read back the same.
                    precondition(
                        (try? parser.decode(parser.encode(packet))).map(\.namespace) == packet.namespace, "a packet does not survive encoding")
                }
            } catch {
                // A real client's connection closes here: start over, as a new connection would.
                decoder = SocketIODecoder(maxAttachments: 10, parser: parser)
            }
        }
    }
}
