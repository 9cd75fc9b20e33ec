import FuzzSupport

@testable import SocketIO

/// The offset a recovering client presents: any text either is an offset that prints back the
/// same, or is refused.
@_cdecl("fuzz_recovery_offset_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in
        let text = String(decoding: bytes, as: UTF8.self)
        if let offset = SocketIORecoveryOffset.parse(text) {
            precondition(SocketIORecoveryOffset.parse(String(offset)) == offset, "an offset does not print back")
        }
    }
}
