public import Foundation

/// A typed, user-defined message attribute: `String`, `Number` or `Binary`, optionally with a custom suffix.
///
/// SQS carries `Number` values as strings; custom types look like `Number.int` or `String.json`.
public struct MessageAttributeValue: Sendable, Hashable, Codable {
    /// The data type, e.g. `String`, `Number`, `Binary` or `String.json`.
    public var dataType: String
    /// The value of `String` and `Number` attributes.
    public var stringValue: String?
    /// The value of `Binary` attributes (base64 on the wire).
    public var binaryValue: Data?

    /// Creates an attribute from its wire parts.
    public init(dataType: String, stringValue: String? = nil, binaryValue: Data? = nil) {
        self.dataType = dataType
        self.stringValue = stringValue
        self.binaryValue = binaryValue
    }

    /// A `String` attribute.
    public static func string(_ value: String) -> Self {
        Self(dataType: "String", stringValue: value)
    }

    /// A `Number` attribute, e.g. `.number(42)`.
    public static func number(_ value: some Numeric & CustomStringConvertible) -> Self {
        Self(dataType: "Number", stringValue: value.description)
    }

    /// A `Binary` attribute.
    public static func binary(_ value: Data) -> Self {
        Self(dataType: "Binary", binaryValue: value)
    }

    private enum CodingKeys: String, CodingKey {
        case dataType = "DataType"
        case stringValue = "StringValue"
        case binaryValue = "BinaryValue"
    }
}
