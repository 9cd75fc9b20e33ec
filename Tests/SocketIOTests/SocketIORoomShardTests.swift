import Testing

@testable import SocketIO

@Suite("A loop's shard of a namespace's sockets")
struct SocketIORoomShardTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        var rooms: Set<String> = []
        var except: Set<String> = []
        let selected: [String]
        var testDescription: String { name }
    }

    /// a is in red and blue, b in red, c in green; each is in its own room too.
    static func shard() -> SocketIORoomShard<String> {
        var shard = SocketIORoomShard<String>()
        shard.insert("a", id: "a", rooms: ["a", "red", "blue"])
        shard.insert("b", id: "b", rooms: ["b", "red"])
        shard.insert("c", id: "c", rooms: ["c", "green"])
        return shard
    }

    static let cases: [Case] = [
        Case(name: "no rooms selects every socket", selected: ["a", "b", "c"]),
        Case(name: "a room selects its members", rooms: ["red"], selected: ["a", "b"]),
        Case(name: "several rooms select each member once", rooms: ["red", "blue", "green"], selected: ["a", "b", "c"]),
        Case(name: "an unknown room selects nobody", rooms: ["nobody"], selected: []),
        Case(name: "exceptions leave their members out", except: ["blue"], selected: ["b", "c"]),
        Case(name: "a socket's own room as exception leaves it out (socket.broadcast)", rooms: ["red"], except: ["a"], selected: ["b"]),
    ]

    @Test("selection by rooms and exceptions", arguments: cases)
    func selection(_ testCase: Case) {
        var options = SocketIOBroadcastOptions()
        options.rooms = testCase.rooms
        options.except = testCase.except
        #expect(Self.shard().select(options).sorted() == testCase.selected)
        #expect(Self.shard().selectIDs(options).sorted() == testCase.selected)
    }

    @Test("joins, leaves and removal keep rooms and sizes exact; a socket not here joins nothing")
    func membership() {
        var shard = Self.shard()
        shard.join("b", ["blue"])
        shard.leave("a", "red")
        shard.join("ghost", ["red"])
        #expect(shard.rooms(of: "a") == ["a", "blue"])
        #expect(shard.rooms(of: "ghost") == [])
        #expect(shard.roomSizes["red"] == 1)
        #expect(shard.roomSizes["blue"] == 2)
        #expect(shard.remove("b") == "b")
        #expect(shard.roomSizes["red"] == nil)
        #expect(shard.roomSizes["b"] == nil)
        #expect(shard.count == 2)
        #expect(shard.remove("b") == nil)
        shard.leave("b", "blue")
        #expect(shard.roomSizes["blue"] == 1)
    }
}
