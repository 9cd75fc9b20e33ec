public import NIOCore

/// A Socket.IO argument: any JSON value, or binary data sent as an attachment.
public enum SocketIOValue: Sendable, Hashable {
    /// JSON `null`.
    case null
    /// JSON `true` or `false`.
    case bool(Bool)
    /// A JSON number (as JavaScript sees it: a double).
    case number(Double)
    /// A JSON string.
    case string(String)
    /// A JSON array.
    case array([SocketIOValue])
    /// A JSON object.
    case object(SocketIOObject)
    /// Binary data, carried as a Socket.IO attachment.
    case binary(ByteBuffer)

    /// The string, when this is one.
    public var stringValue: String? {
        if case .string(let value) = self { value } else { nil }
    }

    /// The number, when this is one.
    public var numberValue: Double? {
        if case .number(let value) = self { value } else { nil }
    }

    /// The number as an integer, when this is an integral number.
    public var intValue: Int? {
        guard case .number(let value) = self, let int = Int(exactly: value) else { return nil }
        return int
    }

    /// The Boolean, when this is one.
    public var boolValue: Bool? {
        if case .bool(let value) = self { value } else { nil }
    }

    /// The elements, when this is an array.
    public var arrayValue: [SocketIOValue]? {
        if case .array(let value) = self { value } else { nil }
    }

    /// The members, when this is an object.
    public var objectValue: SocketIOObject? {
        if case .object(let value) = self { value } else { nil }
    }

    /// The bytes, when this is binary data.
    public var binaryValue: ByteBuffer? {
        if case .binary(let value) = self { value } else { nil }
    }

    /// The member `key` of an object, or `nil`.
    public subscript(key: String) -> SocketIOValue? {
        objectValue?[key]
    }

    /// Whether the value contains binary data anywhere (and so needs attachments).
    public var containsBinary: Bool {
        switch self {
        case .binary: true
        case .array(let values): values.contains { $0.containsBinary }
        case .object(let object): object.values.contains { $0.containsBinary }
        default: false
        }
    }
}

extension SocketIOValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: SocketIOValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, SocketIOValue)...) {
        self = .object(SocketIOObject(elements))
    }
}

extension SocketIOValue: CustomStringConvertible {
    /// The value as JSON text (binary shown as a placeholder).
    public var description: String {
        var buffer = ByteBuffer()
        JSON.write(self, into: &buffer, attachments: nil)
        return String(buffer: buffer)
    }
}
