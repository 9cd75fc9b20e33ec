import FuzzSupport
import Herald
import NIOCore

/// The message envelope (publish API and queue bodies): one envelope with routing attributes, and
/// a batch.
@_cdecl("fuzz_envelope_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in
        let body = ByteBuffer(bytes: bytes)
        _ = try? HeraldMessage.decode(body: body, attributes: ["herald-event": "e", "herald-to": "a,b"], defaultEvent: "fallback")
        _ = try? HeraldMessage.decode(body: body, attributes: [:], defaultEvent: nil)
        _ = try? HeraldMessage.decodeBatch(body: body)
    }
}
