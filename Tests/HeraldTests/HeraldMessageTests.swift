import NIOCore
import Testing

@testable import Herald

@Suite("Message envelope and raw-body routing")
struct HeraldMessageTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let body: String
        let attributes: [String: String]
        let defaultEvent: String?
        let event: String
        let arguments: String
        var namespace = "/"
        var rooms: [String] = []
        var except: [String] = []
        var isVolatile = false
        var id: String? = nil
        var testDescription: String { body }
    }

    static let cases: [Case] = [
        .init(
            body: #"{"event":"item_added","data":{"id":1,"name":"x"}}"#, attributes: [:], defaultEvent: nil, event: "item_added",
            arguments: #"[{"id":1,"name":"x"}]"#),
        .init(
            body: #"{"event":"e","args":[1, "two" ,{"3":[]}]}"#, attributes: [:], defaultEvent: nil, event: "e", arguments: #"[1, "two" ,{"3":[]}]"#),
        .init(body: #"{"event":"e"}"#, attributes: [:], defaultEvent: nil, event: "e", arguments: "[]"),
        .init(
            body: #"{"event":"e","data":null,"namespace":"/feed","to":["a","b"],"except":"c","volatile":true,"id":"k1"}"#,
            attributes: [:], defaultEvent: nil, event: "e", arguments: "[null]", namespace: "/feed", rooms: ["a", "b"], except: ["c"],
            isVolatile: true, id: "k1"
        ),
        .init(
            body: #"{"id": 7, "name": "raw"}"#,
            attributes: ["herald-event": "item_added", "herald-namespace": "/shop", "herald-to": "user:1, user:2", "herald-id": "m-1"],
            defaultEvent: nil, event: "item_added", arguments: #"[{"id": 7, "name": "raw"}]"#, namespace: "/shop", rooms: ["user:1", "user:2"],
            id: "m-1"
        ),
        .init(body: #"{"id": 7}"#, attributes: [:], defaultEvent: "item_added", event: "item_added", arguments: #"[{"id": 7}]"#),
        .init(body: #"[1,2]"#, attributes: [:], defaultEvent: "list", event: "list", arguments: "[[1,2]]"),
        .init(
            body: #"{"event":"x","data":1}"#, attributes: ["herald-event": "wins"], defaultEvent: nil, event: "wins",
            arguments: #"[{"event":"x","data":1}]"#),
    ]

    @Test("envelopes and raw bodies become messages with their data kept as bytes", arguments: cases)
    func decoding(_ testCase: Case) throws {
        let message = try HeraldMessage.decode(
            body: ByteBuffer(string: testCase.body), attributes: testCase.attributes, defaultEvent: testCase.defaultEvent)
        #expect(message.event == testCase.event)
        #expect(String(buffer: message.arguments) == testCase.arguments)
        #expect(message.namespace == testCase.namespace)
        #expect(message.rooms == testCase.rooms)
        #expect(message.exceptRooms == testCase.except)
        #expect(message.isVolatile == testCase.isVolatile)
        #expect(message.id == testCase.id)
    }

    static let bad: [(String, [String: String], String)] = [
        ("not json", [:], "the body is not JSON"),
        (#"{"id":1}"#, [:], "the body is not an envelope"),
        (#"{"event":1,"data":2}"#, [:], "the body is not an envelope"),
        (#"{"event":"e","data":1,"args":[2]}"#, [:], "either \"data\" or \"args\""),
        (#"{"event":"e","args":{"a":1}}"#, [:], "\"args\" must be an array"),
        (#"{"event":"e","to":5}"#, [:], "\"to\" must be a room name"),
        (#"{"event":"e","to":["a",1]}"#, [:], "\"to\" must be a room name"),
        (#"{"event":"e","volatile":"yes"}"#, [:], "\"volatile\" must be true or false"),
        (#"{"event":"e","namespace":"feed"}"#, [:], "must start with '/'"),
        (#"{"event":"disconnect"}"#, [:], "reserved"),
        (#"{"event":"e","colour":"red"}"#, [:], "unknown envelope member \"colour\""),
        (#"{"event":"e","data":[1,}"#, [:], "the body is not"),
        ("{broken", ["herald-event": "e"], "the body of event 'e' is not JSON"),
    ]

    @Test("bad bodies are refused with a message that says what to fix", arguments: bad)
    func refusals(body: String, attributes: [String: String], message: String) {
        #expect {
            try HeraldMessage.decode(body: ByteBuffer(string: body), attributes: attributes)
        } throws: { error in
            (error as? HeraldMessageError)?.description.contains(message) == true
        }
    }

    @Test("a batch is an array of envelopes, and a bad item is named by its index")
    func batch() throws {
        let messages = try HeraldMessage.decodeBatch(body: ByteBuffer(string: #"[{"event":"a","data":1},{"event":"b","args":[2,3]}]"#))
        #expect(messages.map(\.event) == ["a", "b"])
        #expect(messages.map { String(buffer: $0.arguments) } == ["[1]", "[2,3]"])
        #expect(throws: HeraldMessageError.self) { try HeraldMessage.decodeBatch(body: ByteBuffer(string: #"{"event":"a"}"#)) }
        #expect {
            try HeraldMessage.decodeBatch(body: ByteBuffer(string: #"[{"event":"a"},{"nope":1}]"#))
        } throws: { error in
            (error as? HeraldMessageError)?.description.hasPrefix("item 1:") == true
        }
    }
}
