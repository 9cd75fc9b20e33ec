import Foundation

extension SocketIOHandshake {
    /// A handshake read from another node's FETCH_SOCKETS_RESPONSE.
    init(headers: [(name: String, value: String)], query: [String: String], address: String, url: String, issued: Int64, auth: SocketIOValue) {
        self.headers = headers
        self.query = query
        self.address = address
        self.url = url
        self.issued = issued
        self.auth = auth
    }
}

extension SocketIORemoteSocket {
    /// The socket as the reference sends it in a FETCH_SOCKETS_RESPONSE: `{id, handshake, rooms,
    /// data}`, the handshake with `headers`, `time`, `address`, `xdomain`, `secure`, `issued`,
    /// `url`, `query` and `auth`.
    public var clusterValue: SocketIOValue {
        var handshake = SocketIOObject()
        if let shake = self.handshake {
            handshake["headers"] = .object(SocketIOObject(shake.headers.map { ($0.name, SocketIOValue.string($0.value)) }))
            handshake["time"] = .string(Self.javaScriptTime(issued: shake.issued))
            handshake["address"] = .string(shake.address)
            handshake["xdomain"] = .bool(shake.header("origin") != nil)
            handshake["secure"] = .bool(false)
            handshake["issued"] = .number(Double(shake.issued))
            handshake["url"] = .string(shake.url)
            handshake["query"] = .object(SocketIOObject(shake.query.sorted { $0.key < $1.key }.map { ($0.key, SocketIOValue.string($0.value)) }))
            handshake["auth"] = shake.auth
        }
        // A socket's data is `{}` until set, in the reference: Node code reads its fields.
        return [
            "id": .string(id), "handshake": .object(handshake), "rooms": .array(rooms.sorted().map { .string($0) }),
            "data": data == .null ? .object([:]) : data,
        ]
    }

    /// The handshake's time as the reference writes it (JavaScript's `new Date() + ""`, in UTC):
    /// `Thu Dec 03 2026 07:22:43 GMT+0000 (Coordinated Universal Time)`.
    static func javaScriptTime(issued: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(issued) / 1000)
        return date.formatted(
            Date.VerbatimFormatStyle(
                format:
                    "\(weekday: .abbreviated) \(month: .abbreviated) \(day: .twoDigits) \(year: .defaultDigits) \(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits):\(second: .twoDigits) GMT+0000 (Coordinated Universal Time)",
                locale: Locale(identifier: "en_US_POSIX"), timeZone: .gmt, calendar: Calendar(identifier: .gregorian)))
    }

    /// A socket of another node, from its FETCH_SOCKETS_RESPONSE entry; `nil` when it has no id.
    public init?(clusterValue value: SocketIOValue) {
        guard let id = value["id"]?.stringValue else { return nil }
        let shake = value["handshake"]
        let headers =
            shake?["headers"]?.objectValue.map { $0.members.compactMap { member in member.value.stringValue.map { (member.key, $0) } } } ?? []
        let query = shake?["query"]?.objectValue.map { object in
            Dictionary(
                object.members.compactMap { member in member.value.stringValue.map { (member.key, $0) } }, uniquingKeysWith: { first, _ in first })
        }
        self.init(
            id: id,
            handshake: SocketIOHandshake(
                headers: headers, query: query ?? [:], address: shake?["address"]?.stringValue ?? "", url: shake?["url"]?.stringValue ?? "",
                issued: Int64(shake?["issued"]?.numberValue ?? 0), auth: shake?["auth"] ?? .object([:])),
            rooms: Set(value["rooms"]?.arrayValue?.compactMap(\.stringValue) ?? []), data: value["data"] ?? .null, local: nil)
    }
}
