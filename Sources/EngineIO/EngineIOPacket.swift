public import NIOCore

/// The kind of an Engine.IO v4 packet, encoded on the wire as one ASCII digit.
public enum EngineIOPacketType: UInt8, Sendable, CaseIterable {
    /// Sent by the server when a session opens, carrying the handshake.
    case open = 0x30
    /// Requests or announces the closing of the session.
    case close = 0x31
    /// A heartbeat probe (also `2probe` during an upgrade).
    case ping = 0x32
    /// The answer to a ping (also `3probe` during an upgrade).
    case pong = 0x33
    /// An application message: what Socket.IO rides on.
    case message = 0x34
    /// Sent by the client over the new transport to complete an upgrade.
    case upgrade = 0x35
    /// A packet that carries nothing; used to release a pending poll.
    case noop = 0x36
}

/// The content of an Engine.IO packet: UTF-8 text or raw bytes.
public enum EngineIOPayload: Sendable, Hashable {
    /// UTF-8 text, without the packet type character.
    case text(ByteBuffer)
    /// Binary data (only message packets carry it).
    case binary(ByteBuffer)

    /// The bytes of the payload, whatever their kind.
    public var bytes: ByteBuffer {
        switch self {
        case .text(let buffer), .binary(let buffer): buffer
        }
    }

    /// Whether the payload is binary.
    public var isBinary: Bool {
        if case .binary = self { true } else { false }
    }
}

/// One decoded Engine.IO packet.
public struct EngineIOPacket: Sendable, Hashable {
    /// The packet's kind.
    public var type: EngineIOPacketType
    /// The packet's data; `nil` when the packet has none.
    public var payload: EngineIOPayload?

    /// Creates a packet.
    public init(_ type: EngineIOPacketType, _ payload: EngineIOPayload? = nil) {
        self.type = type
        self.payload = payload
    }

    /// Creates a packet whose payload is the given text.
    public init(_ type: EngineIOPacketType, text: String) {
        self.type = type
        self.payload = .text(ByteBuffer(string: text))
    }

    /// The payload read as a UTF-8 string, or `nil` when it is absent or binary.
    public var text: String? {
        guard case .text(let buffer) = payload else { return nil }
        return String(buffer: buffer)
    }
}
