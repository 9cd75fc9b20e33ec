/// The sockets of one namespace that live on one event loop, by id and by room: owned by that
/// loop, so selecting and writing to them takes no lock.
///
/// A value with no I/O inside; `Member` is the socket (tests use plain values).
struct SocketIORoomShard<Member> {
    private var members: [String: Member] = [:]
    private var rooms: [String: Set<String>] = [:]
    private var memberRooms: [String: Set<String>] = [:]

    init() {}

    /// How many sockets the shard holds.
    var count: Int { members.count }

    /// Every socket of the shard.
    var all: [Member] { Array(members.values) }

    /// The socket with this id, if it is here.
    func member(id: String) -> Member? { members[id] }

    /// Adds a socket already in `rooms`.
    mutating func insert(_ member: Member, id: String, rooms: Set<String>) {
        members[id] = member
        memberRooms[id] = []
        join(id, rooms)
    }

    /// Puts a socket of the shard into rooms (a socket not here is left alone).
    /// Returns the rooms it was not in before.
    @discardableResult
    mutating func join(_ id: String, _ newRooms: Set<String>) -> Set<String> {
        guard members[id] != nil else { return [] }
        let joined = newRooms.subtracting(memberRooms[id] ?? [])
        memberRooms[id, default: []].formUnion(newRooms)
        for room in joined { rooms[room, default: []].insert(id) }
        return joined
    }

    /// Takes a socket out of a room; returns whether it was in it.
    @discardableResult
    mutating func leave(_ id: String, _ room: String) -> Bool {
        guard memberRooms[id]?.remove(room) != nil else { return false }
        rooms[room]?.remove(id)
        if rooms[room]?.isEmpty == true { rooms[room] = nil }
        return true
    }

    /// Removes a socket and its rooms.
    @discardableResult
    mutating func remove(_ id: String) -> Member? {
        for room in memberRooms.removeValue(forKey: id) ?? [] {
            rooms[room]?.remove(id)
            if rooms[room]?.isEmpty == true { rooms[room] = nil }
        }
        return members.removeValue(forKey: id)
    }

    /// The rooms a socket is in (empty for a socket not here).
    func rooms(of id: String) -> Set<String> { memberRooms[id] ?? [] }

    /// Each room and how many of the shard's sockets are in it.
    var roomSizes: [String: Int] { rooms.mapValues(\.count) }

    /// The ids of the sockets in at least one of `options.rooms` (all when empty) and in none of
    /// `options.except`.
    func selectIDs(_ options: SocketIOBroadcastOptions) -> [String] {
        var selected: [String]
        if options.rooms.isEmpty {
            selected = Array(members.keys)
        } else if options.rooms.count == 1, let room = options.rooms.first {
            selected = Array(rooms[room] ?? [])
        } else {
            var union: Set<String> = []
            for room in options.rooms { union.formUnion(rooms[room] ?? []) }
            selected = Array(union)
        }
        if !options.except.isEmpty {
            var excluded: Set<String> = []
            for room in options.except { excluded.formUnion(rooms[room] ?? []) }
            selected.removeAll { excluded.contains($0) }
        }
        return selected
    }

    /// The sockets ``selectIDs(_:)`` selects.
    func select(_ options: SocketIOBroadcastOptions) -> [Member] {
        if options.rooms.isEmpty, options.except.isEmpty { return all }
        return selectIDs(options).compactMap { members[$0] }
    }
}
