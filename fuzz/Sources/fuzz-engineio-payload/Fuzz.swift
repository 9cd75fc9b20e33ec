import FuzzSupport
import NIOCore

@testable import EngineIO

/// The polling POST decoders of both revisions; a decoded payload is encoded again and must
/// decode to the same packets.
@_cdecl("fuzz_engineio_payload_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in
        let body = ByteBuffer(bytes: bytes)
        if let packets = try? EngineIOCodec.decodePayload(body) {
            let again = EngineIOCodec.encodePayload(packets)
            precondition((try? EngineIOCodec.decodePayload(again)) == packets, "a v4 payload does not survive encoding")
        }
        if let packets = try? EngineIOCodecV3.decodePayload(body) {
            for binary in [false, true] {
                let (again, _) = EngineIOCodecV3.encodePayload(packets, binary: binary)
                if packets.isEmpty { continue }
                precondition((try? EngineIOCodecV3.decodePayload(again)) == packets, "a v3 payload does not survive encoding")
            }
        }
    }
}
