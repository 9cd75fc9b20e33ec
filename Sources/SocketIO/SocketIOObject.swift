/// A JSON object whose members keep the order they were written or received in, as a
/// JavaScript object does. Equality ignores the order, as deep equality in JavaScript does.
public struct SocketIOObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    /// The members, in order, each key once.
    public private(set) var members: [(key: String, value: SocketIOValue)]

    /// An empty object.
    public init() { members = [] }

    /// An object with these members; a repeated key keeps its first place and its last value.
    public init(_ members: some Sequence<(String, SocketIOValue)>) {
        self.members = []
        var positions: [String: Int] = [:]
        for (key, value) in members {
            if let position = positions[key] {
                self.members[position].value = value
            } else {
                positions[key] = self.members.count
                self.members.append((key, value))
            }
        }
    }

    /// An object with the members of a dictionary (in the dictionary's order).
    public init(_ dictionary: [String: SocketIOValue]) {
        members = dictionary.map { ($0.key, $0.value) }
    }

    public init(dictionaryLiteral elements: (String, SocketIOValue)...) {
        self.init(elements)
    }

    /// The value of a member; setting `nil` removes it, setting a new key appends it.
    public subscript(key: String) -> SocketIOValue? {
        get { members.first { $0.key == key }?.value }
        set {
            let index = members.firstIndex { $0.key == key }
            switch (index, newValue) {
            case (let index?, let value?): members[index].value = value
            case (let index?, nil): members.remove(at: index)
            case (nil, let value?): members.append((key, value))
            case (nil, nil): break
            }
        }
    }

    /// The keys, in order.
    public var keys: [String] { members.map(\.key) }
    /// The values, in order.
    public var values: [SocketIOValue] { members.map(\.value) }
    /// The number of members.
    public var count: Int { members.count }
    /// Whether the object has no members.
    public var isEmpty: Bool { members.isEmpty }

    public func makeIterator() -> IndexingIterator<[(key: String, value: SocketIOValue)]> {
        members.makeIterator()
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.members.allSatisfy { rhs[$0.key] == $0.value }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        // Order-independent: the members' hashes are summed.
        var sum = 0
        for (key, value) in members {
            var member = Hasher()
            member.combine(key)
            member.combine(value)
            sum = sum &+ member.finalize()
        }
        hasher.combine(sum)
    }

    public var description: String { SocketIOValue.object(self).description }
}
