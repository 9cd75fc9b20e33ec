import NIOCore
import Testing

@testable import SocketIO

@Suite("JSON is read strictly, whether parsed or only validated")
struct JSONStrictnessTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let bytes: [UInt8]
        let reason: String?
        var testDescription: String { "\(String(decoding: bytes, as: UTF8.self).debugDescription) → \(reason ?? "valid")" }

        init(_ text: String, _ reason: String?) {
            self.bytes = Array(text.utf8)
            self.reason = reason
        }

        init(bytes: [UInt8], _ reason: String?) {
            self.bytes = bytes
            self.reason = reason
        }
    }

    static let cases: [Case] = [
        .init(#"["a\"b\\c\/d\b\f\n\r\t"]"#, nil),
        .init(#"["\u00e9\ud83d\ude00"]"#, nil),
        .init(#"["ünïcode ✓ 😀"]"#, nil),
        .init(#"["\q"]"#, "invalid escape"),
        .init(#"["\x41"]"#, "invalid escape"),
        .init(#"["\u12"]"#, "invalid unicode escape"),
        .init(#"["\u12G4"]"#, "invalid unicode escape"),
        .init("[\"\u{01}\"]", "control character in string"),
        .init(bytes: [0x5B, 0x22, 0xFF, 0x22, 0x5D], "invalid UTF-8"),
        .init(bytes: [0x5B, 0x22, 0xC3, 0x22, 0x5D], "invalid UTF-8"),
        .init(bytes: [0x5B, 0x22, 0xC0, 0xAF, 0x22, 0x5D], "invalid UTF-8"),
        .init(bytes: [0x5B, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x5D], "invalid UTF-8"),
        .init(bytes: [0x5B, 0x22, 0xF4, 0x90, 0x80, 0x80, 0x22, 0x5D], "invalid UTF-8"),
        .init(bytes: [0x5B, 0x22, 0xE2, 0x9C, 0x22, 0x5D], "invalid UTF-8"),
    ]

    @Test("validation without decoding accepts and refuses what parsing does", arguments: cases)
    func validateMatchesParse(_ input: Case) {
        let buffer = ByteBuffer(bytes: input.bytes)
        let validated = Result { () throws(JSONError) in try RawJSON.validate(buffer) }
        let parsed = Result { () throws(JSONError) in _ = try JSON.parse(buffer.readableBytesView) }
        if let reason = input.reason {
            #expect(throws: JSONError.self) { try validated.get() }
            #expect(throws: JSONError.self) { try parsed.get() }
            if case .failure(let error) = validated { #expect(error.reason == reason) }
            if case .failure(let error) = parsed { #expect(error.reason == reason) }
        } else {
            #expect(throws: Never.self) { try validated.get() }
            #expect(throws: Never.self) { try parsed.get() }
        }
    }

    @Test("an object's member values are validated as they are sliced out")
    func membersAreValidated() throws {
        #expect(throws: JSONError.self) { try RawJSON.members(of: ByteBuffer(string: #"{"data":"\q"}"#)) }
        let members = try RawJSON.members(of: ByteBuffer(string: #"{"data":"\u00e9"}"#))
        #expect(members.map(\.key) == ["data"])
        #expect(String(buffer: members[0].value) == #""\u00e9""#)
    }
}
