import EngineIO
import NIOCore
import Testing

@testable import SocketIO

@Suite("Socket.IO client state machine")
struct SocketIOClientStateMachineTests {
    typealias Action = SocketIOClientStateMachine.Action

    /// One event given to the machine and what it must answer.
    enum Step: Sendable {
        case text(String, Action)
        case binary([UInt8], Action)
        case admit(Int, SocketIOClientStateMachine.Admission)
        case refuse(Int, tellClient: Bool)
        case left(Int)
        /// The connect timer fires this many seconds after the connection opened.
        case timer(seconds: Int64, Action)
        case serverCloses(Action)
        case connectionClosed(sockets: [Int])
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let steps: [Step]
        var testDescription: String { name }
    }

    static func event(_ name: String, namespace: String = "/") -> SocketIOPacket {
        SocketIOPacket(type: .event, namespace: namespace, data: [.string(name)])
    }

    static func invalidState(_ sockets: [Int]) -> Action {
        .closeConnection(sockets: sockets, reason: .forcedServerClose, engineReason: .forcedClose, writeDisconnect: false)
    }

    static let parseError = Action.closeConnection(sockets: [], reason: .parseError, engineReason: .parseError, writeDisconnect: false)

    static let cases: [Case] = [
        Case(
            name: "a CONNECT starts a socket whose admission routes the namespace's packets to it",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .admit(0, .admit),
                .text(#"2["hello"]"#, .deliver(event("hello"), to: 0)),
            ]),
        Case(
            name: "the auth payload of a CONNECT reaches the namespace lookup",
            steps: [
                .text(#"0/admin,{"token":"t"}"#, .connect(namespace: "/admin", auth: ["token": "t"], member: 0))
            ]),
        Case(
            name: "a packet for a namespace without a socket closes the connection",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .admit(0, .admit),
                .text(#"2/other,["hello"]"#, invalidState([0])),
                .text("0", .none),
            ]),
        Case(
            name: "an event while the namespace's middlewares run closes the connection",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .text(#"2["hello"]"#, invalidState([])),
                .admit(0, .discard),
            ]),
        Case(
            name: "a CONNECT for a connected namespace closes the connection and every socket, as the reference",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .admit(0, .admit),
                .text("0/admin,", .connect(namespace: "/admin", auth: nil, member: 1)),
                .admit(1, .admit),
                .text("0", invalidState([0, 1])),
            ]),
        Case(
            name: "a CONNECT while an earlier one still runs its middlewares starts a second socket; packets go to the last admitted",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .text("0", .connect(namespace: "/", auth: nil, member: 1)),
                .admit(1, .admit),
                .admit(0, .admit),
                .text(#"2["hello"]"#, .deliver(event("hello"), to: 0)),
                .connectionClosed(sockets: [0, 1]),
            ]),
        Case(
            name: "a duplicate socket that is not routed to stays connected after the routed one left",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .text("0", .connect(namespace: "/", auth: nil, member: 1)),
                .admit(0, .admit),
                .admit(1, .admit),
                .left(1),
                .text(#"2["hello"]"#, invalidState([0])),
            ]),
        Case(
            name: "a CONNECT_ERROR from the client closes the connection",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .admit(0, .admit),
                .text(#"4{"message":"no"}"#, invalidState([0])),
            ]),
        Case(
            name: "an undecodable packet closes the connection with a parse error",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .admit(0, .admit),
                .text("9", .closeConnection(sockets: [0], reason: .parseError, engineReason: .parseError, writeDisconnect: false)),
            ]),
        Case(
            name: "a binary event split across messages is delivered once its last attachment arrived",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .admit(0, .admit),
                .text(#"52-["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#, .none),
                .binary([1, 2], .none),
                .binary(
                    [3],
                    .deliver(
                        SocketIOPacket(type: .binaryEvent, data: ["file", .binary(ByteBuffer(bytes: [1, 2])), .binary(ByteBuffer(bytes: [3]))]), to: 0
                    )),
                .text(#"2["after"]"#, .deliver(event("after"), to: 0)),
            ]),
        Case(
            name: "text while attachments are awaited is a parse error",
            steps: [
                .text(#"51-["file",{"_placeholder":true,"num":0}]"#, .none),
                .text(#"2["hello"]"#, parseError),
            ]),
        Case(
            name: "binary data with no packet waiting for it is a parse error",
            steps: [
                .binary([1], parseError)
            ]),
        Case(
            name: "a packet announcing more attachments than allowed is a parse error",
            steps: [
                .text(#"511-["file"]"#, parseError)
            ]),
        Case(
            name: "the connect timeout closes a client that joined no namespace, not earlier",
            steps: [
                .timer(seconds: 44, .none),
                .timer(seconds: 45, invalidState([])),
            ]),
        Case(
            name: "the connect timeout closes a client whose only CONNECT is still in its middlewares",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .timer(seconds: 45, invalidState([])),
                .admit(0, .discard),
            ]),
        Case(
            name: "the connect timeout does nothing once a namespace was joined",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .admit(0, .admit),
                .left(0),
                .timer(seconds: 45, .none),
            ]),
        Case(
            name: "a refused socket is told so, unless the connection closed meanwhile",
            steps: [
                .text("0/a,", .connect(namespace: "/a", auth: nil, member: 0)),
                .text("0/b,", .connect(namespace: "/b", auth: nil, member: 1)),
                .refuse(0, tellClient: true),
                .connectionClosed(sockets: []),
                .refuse(1, tellClient: false),
            ]),
        Case(
            name: "a socket admitted after its connection closed is discarded",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .connectionClosed(sockets: []),
                .admit(0, .discard),
            ]),
        Case(
            name: "a namespace whose socket left accepts a new CONNECT",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .admit(0, .admit),
                .left(0),
                .text("0", .connect(namespace: "/", auth: nil, member: 1)),
            ]),
        Case(
            name: "the server closing the client disconnects every socket, then ignores input",
            steps: [
                .text("0", .connect(namespace: "/", auth: nil, member: 0)),
                .admit(0, .admit),
                .serverCloses(.closeConnection(sockets: [0], reason: .serverNamespaceDisconnect, engineReason: .forcedClose, writeDisconnect: true)),
                .serverCloses(.none),
                .text(#"2["hello"]"#, .none),
                .connectionClosed(sockets: []),
            ]),
    ]

    @Test("each transition", arguments: cases)
    func transitions(_ testCase: Case) {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var machine = SocketIOClientStateMachine(maxAttachments: 10, connectTimeout: .seconds(45), now: start)
        for (index, step) in testCase.steps.enumerated() {
            switch step {
            case .text(let text, let expected):
                #expect(machine.receive(.text(ByteBuffer(string: text))) == expected, "step \(index)")
            case .binary(let bytes, let expected):
                #expect(machine.receive(.binary(ByteBuffer(bytes: bytes))) == expected, "step \(index)")
            case .admit(let member, let expected):
                #expect(machine.admit(member) == expected, "step \(index)")
            case .refuse(let member, let tellClient):
                #expect(machine.refuse(member) == tellClient, "step \(index)")
            case .left(let member):
                machine.socketLeft(member)
            case .timer(let seconds, let expected):
                #expect(machine.connectTimerFired(now: start + .seconds(seconds)) == expected, "step \(index)")
            case .serverCloses(let expected):
                #expect(machine.closeByServer() == expected, "step \(index)")
            case .connectionClosed(let sockets):
                #expect(machine.connectionClosed(.transportClose) == sockets, "step \(index)")
            }
        }
    }
}
