import FuzzSupport
import NIOCore

@testable import SocketIO

/// The JSON value parser and the raw JSON validator: they must agree on what is JSON, and a
/// parsed value must survive writing and parsing again.
@_cdecl("fuzz_json_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in
        let buffer = ByteBuffer(bytes: bytes)
        let parsed = try? JSON.parse(buffer.readableBytesView)
        let valid = (try? RawJSON.validate(buffer)) != nil
        precondition((parsed != nil) == valid, "the parser and the validator disagree")
        if let parsed {
            var written = ByteBuffer()
            var attachments: [ByteBuffer] = []
            withUnsafeMutablePointer(to: &attachments) { JSON.write(parsed, into: &written, attachments: $0) }
            // A number past Double's range reads as an infinity, written as null: as in JavaScript.
            precondition((try? JSON.parse(written.readableBytesView)) == finite(parsed), "a value does not survive writing")
        }
        if let members = try? RawJSON.members(of: buffer) { _ = members.count }
        if let elements = try? RawJSON.elements(of: buffer) { _ = elements.count }
    }
}

/// `value` with its infinite numbers as null, the way JSON writes them.
func finite(_ value: SocketIOValue) -> SocketIOValue {
    switch value {
    case .number(let number) where !number.isFinite: .null
    case .array(let elements): .array(elements.map(finite))
    case .object(let members): .object(SocketIOObject(members.map { ($0.key, finite($0.value)) }))
    default: value
    }
}
