import Synchronization

/// Handles an event another server of the cluster emitted: gets its arguments, returns the
/// answer sent back when the emitter asked for acknowledgements.
public typealias SocketIOServerSideHandler = @Sendable (_ arguments: [SocketIOValue]) async -> SocketIOValue

/// The handlers of the events the other servers of a namespace's cluster emit
/// (``SocketIONamespace/serverSideEmit(_:_:)``), by event name.
public final class SocketIOServerSideEvents: Sendable {
    private let handlers = Mutex<[String: [SocketIOServerSideHandler]]>([:])

    init() {}

    func on(_ event: String, _ handler: @escaping SocketIOServerSideHandler) {
        handlers.withLock { $0[event, default: []].append(handler) }
    }

    /// Runs the handlers of an event another server emitted (`packet`: its name, then its
    /// arguments), in the order they were added; returns the first one's answer, `nil` when the
    /// event has no handler (then an emitter waiting for answers gets none from this server).
    public func receive(_ packet: [SocketIOValue]) async -> SocketIOValue? {
        guard let event = packet.first?.stringValue else { return nil }
        let arguments = Array(packet.dropFirst())
        var answer: SocketIOValue?
        for handler in handlers.withLock({ $0[event] ?? [] }) {
            let result = await handler(arguments)
            if answer == nil { answer = result }
        }
        return answer
    }
}

/// A request to the other servers of a cluster ended before each of them answered.
public struct SocketIOClusterTimeoutError: Error, CustomStringConvertible, Sendable {
    /// How many servers answered.
    public let received: Int
    /// How many servers were asked.
    public let expected: Int
    /// The answers that came (for ``SocketIONamespace/serverSideEmitWithAck(_:_:)``).
    public let partialResponses: [SocketIOValue]

    public init(received: Int, expected: Int, partialResponses: [SocketIOValue] = []) {
        self.received = received
        self.expected = expected
        self.partialResponses = partialResponses
    }

    public var description: String { "timeout reached: only \(received) responses received out of \(expected)" }
}
