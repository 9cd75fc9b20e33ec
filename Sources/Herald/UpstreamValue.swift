import Foundation
import SocketIO

extension SocketIOValue {
    /// The value as forwarded upstream: each binary value becomes `{"_binary": "<base64>"}`
    /// (standard base64 with padding), everything else is unchanged.
    var upstreamForm: SocketIOValue {
        switch self {
        case .binary(let bytes):
            return ["_binary": .string(Data(bytes.readableBytesView).base64EncodedString())]
        case .array(let values) where containsBinary:
            return .array(values.map(\.upstreamForm))
        case .object(let object) where containsBinary:
            return .object(SocketIOObject(object.map { ($0.key, $0.value.upstreamForm) }))
        default:
            return self
        }
    }
}
