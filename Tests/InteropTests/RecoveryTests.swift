import Foundation
import Hummingbird
import SocketIO
import Synchronization
import Testing

@Suite(
    "Connection state recovery as the JavaScript client speaks it", .serialized,
    .enabled(if: testPython != nil, "run through scripts/test, which installs the Python peers")
)
struct RecoveryTests {
    /// A server with recovery on, whose main namespace puts every socket in `members` and
    /// greets it with whether it was recovered; `/publish` broadcasts tagged events and `/gone`
    /// answers once a socket has left.
    func withRecoveringServer(_ body: @Sendable (_ port: Int) async throws -> Void) async throws {
        var configuration = SocketIOConfiguration()
        configuration.engine.pingInterval = .seconds(2)
        configuration.engine.pingTimeout = .seconds(2)
        var recovery = SocketIOConnectionStateRecovery()
        recovery.maxReplayedEvents = 20
        configuration.connectionStateRecovery = recovery
        let io = SocketIOServer(configuration: configuration)
        io.onConnection { socket in
            socket.join("members")
            socket.emit("welcome", .bool(socket.recovered))
        }
        _ = io.of("/quiet")
        // `/rules`: its middleware counts its runs and gives each socket data; each connection
        // is greeted with whether it was recovered, its data and the middleware's runs so far.
        let runs = Atomic<Int>(0)
        let rules = io.of("/rules")
        rules.use { socket in
            let run = runs.add(1, ordering: .relaxed).newValue
            socket.data = ["n": .number(Double(run))]
        }
        rules.onConnection { socket in
            socket.emit("hello", .bool(socket.recovered), socket.data, .number(Double(runs.load(ordering: .relaxed))))
        }
        let router = Router()
        router.get("publish") { request, _ -> HTTPResponse.Status in
            let query = request.uri.queryParameters
            let namespace = io.of(query.get("namespace") ?? "/")
            var target = namespace.all
            if let room = query.get("room") { target = target.to(room) }
            if let room = query.get("except") { target = target.except(room) }
            if query.get("volatile") != nil { target = target.volatile }
            let tag = query.get("tag") ?? ""
            if query.get("ack") != nil {
                let asking = Task { [target] in _ = try? await target.timeout(.seconds(1)).emitWithAck("asked", .string(tag)) }
                // With nobody selected it ends at once: `wait` makes the broadcast happen before the answer.
                if query.get("wait") != nil { await asking.value }
                return .ok
            }
            for index in 0..<(query.get("count", as: Int.self) ?? 1) {
                target.emit("item", .string(tag), .number(Double(index)))
            }
            return .ok
        }
        router.get("kick") { request, _ -> HTTPResponse.Status in
            let query = request.uri.queryParameters
            guard let socket = await io.of(query.get("namespace") ?? "/").socket(id: query.get("sid") ?? "") else { return .notFound }
            socket.disconnect()
            return .ok
        }
        router.get("gone") { request, _ -> HTTPResponse.Status in
            let query = request.uri.queryParameters
            let namespace = io.of(query.get("namespace") ?? "/")
            let id = query.get("sid") ?? ""
            try await eventually { await namespace.localSockets.socket(id: id) == nil }
            return .ok
        }
        try await withApplication(router: router, server: .socketIO(io), body)
    }

    @Test("a client that lost its connection comes back with its id and exactly the events it missed, in order")
    func recoversMissedEvents() async throws {
        try await withRecoveringServer { port in
            let result = try await PythonProcess(script: "recovering.py", arguments: ["http://127.0.0.1:\(port)"]).result()
            let first = try #require(result["first"] as? [String: Any])
            let hello = try #require(first["hello"] as? [String: String])
            let pid = try #require(hello["pid"])
            let welcome = try #require((first["welcome"] as? [[Any]])?.first)
            #expect(welcome.count == 3 && welcome[0] as? String == "welcome" && welcome[1] as? Bool == false && welcome[2] is String)

            // Back with the same socket id and private session id, recovered.
            #expect(result["back"] as? [String: String] == ["sid": hello["sid"]!, "pid": pid])
            let replayed = try #require(result["replayed"] as? [[Any]])
            #expect(replayed.map { $0.dropLast().map { "\($0)" } } == (0..<5).map { ["item", "away", "\($0)"] } + [["welcome", "1"]])

            // Every event carries an offset, and offsets only grow across the whole stream.
            let stream = [first["before"], result["replayed"], result["after"]].compactMap { $0 as? [[Any]] }.joined()
            let offsets = stream.compactMap { ($0.last as? String).flatMap(UInt64.init) }
            #expect(offsets.count == 3 + 6 + 2)
            #expect(offsets == offsets.sorted() && Set(offsets).count == offsets.count)
            #expect((result["after"] as? [[Any]])?.map { "\($0[1])" } == ["after", "after"])

            // Unknown sessions and deliberate leaves get a new socket.
            let unknown = try #require(result["unknown"] as? [String: Any])
            #expect((unknown["hello"] as? [String: String])?["sid"] != hello["sid"])
            #expect((unknown["welcome"] as? [[Any]])?.first?[1] as? Bool == false)
            let left = try #require(result["left"] as? [String: Any])
            #expect((left["hello"] as? [String: String])?["sid"] != (unknown["hello"] as? [String: String])?["sid"])
            #expect((left["welcome"] as? [[Any]])?.first?[1] as? Bool == false)

            // A client that had received nothing, and so sent no offset, gets what it missed.
            let quiet = try #require(result["quiet"] as? [String: Any])
            #expect((quiet["back"] as? [String: String])?["sid"] == (quiet["hello"] as? [String: String])?["sid"])
            #expect((quiet["replayed"] as? [[Any]])?.map { "\($0[1]) \($0[2])" } == ["quiet-away 0", "quiet-away 1"])

            // Over long-polling: a client that stopped polling (its session timed out) comes back the same way.
            let polling = try #require(result["polling"] as? [String: Any])
            #expect((polling["back"] as? [String: String])?["sid"] == (polling["hello"] as? [String: String])?["sid"])
            let pollingReplay = (polling["replayed"] as? [[Any]])?.map { "\($0[0]) \($0[1])" }
            #expect(pollingReplay == ["item polling-away", "item polling-away", "welcome 1"])

            // Volatile events and events that ask for an ack carry no offset and are not replayed;
            // a recovered socket has its data back, and its middleware did not run again.
            let rules = try #require(result["rules"] as? [String: Any])
            #expect((rules["hello"] as? [Any])?.map { "\($0)" }.prefix(3) == ["0", "[\"n\": 1]", "1"])
            #expect((rules["volatile"] as? [Any])?.map { "\($0)" } == ["item", "v", "0"])
            #expect((rules["asked"] as? [Any])?.map { "\($0)" } == ["asked", "a"])
            #expect((rules["plain"] as? [Any])?.count == 4)
            #expect((rules["back"] as? [String: String])?["sid"] == (rules["sid"] as? String))
            let recoveredEvents = try #require(rules["replayed"] as? [[Any]])
            #expect(recoveredEvents.map { $0.prefix(2).map { "\($0)" } } == [["item", "n2"], ["hello", "1"]])
            #expect(recoveredEvents.last.map { Array($0.dropFirst(2).prefix(2)).map { "\($0)" } } == ["[\"n\": 1]", "1"])

            // Past the replay limit, or after the server disconnected it, a client gets a new
            // socket through the middleware.
            let overLimit = try #require(rules["over_limit"] as? [String: Any])
            #expect((overLimit["back"] as? [String: String])?["sid"] != (rules["sid"] as? String))
            #expect((overLimit["hello"] as? [Any])?.prefix(3).map { "\($0)" } == ["0", "[\"n\": 2]", "2"])
            let kicked = try #require(rules["kicked"] as? [String: Any])
            #expect(kicked["disconnect"] as? String == "41/rules,")
            #expect((kicked["back"] as? [String: String])?["sid"] != (kicked["sid"] as? String))
        }
    }
}
