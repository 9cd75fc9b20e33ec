import SocketIO
import SocketIOTesting
import Testing

/// A socket that an application makes join a huge number of rooms: broadcasts still find it and
/// others, and when it leaves, every one of its rooms goes from the namespace's tables.
@Suite("A socket in 100,000 rooms")
struct ManyRoomsTests {
    static let roomCount = 100_000

    @Test("joins, is reached in any of them, and leaves nothing behind")
    func manyRooms() async throws {
        let io = SocketIOServer(configuration: SocketIOConfiguration())
        io.onConnection { socket in
            if socket.handshake.auth["role"]?.stringValue == "hoarder" {
                socket.join((0..<Self.roomCount).map { "room-\($0)" })
            } else {
                socket.join("news")
            }
            socket.emit("ready")
        }
        let hoarder = SocketIOTestClient(server: io, auth: ["role": "hoarder"])
        let bystander = SocketIOTestClient(server: io, auth: ["role": "reader"])
        try await hoarder.connect()
        try await bystander.connect()
        _ = try await hoarder.receive("ready")
        _ = try await bystander.receive("ready")

        let rooms = await io.of("/").localSockets.roomSizes()
        #expect(rooms.count == Self.roomCount + 1)
        #expect(rooms.allSatisfy { $0.size == 1 })

        io.to("room-99999").emit("last", 1)
        io.to("room-0", "news").emit("both", 2)
        #expect(try await hoarder.receive("last") == [1])
        #expect(try await hoarder.receive("both") == [2])
        #expect(try await bystander.receive("both") == [2])

        await hoarder.disconnect()
        io.to("news").emit("after", 3)
        #expect(try await bystander.receive("after") == [3])
        let left = await io.of("/").localSockets.roomSizes()
        #expect(left.map(\.name) == ["news"])
        #expect(io.of("/").localSockets.count == 1)
        await bystander.disconnect()
        #expect(await io.of("/").localSockets.roomSizes().isEmpty)
    }
}
