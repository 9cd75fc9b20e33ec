public import Foundation

/// An adapter whose cluster gives each namespace one order of replayable broadcasts, shared by
/// every server: connection state recovery then works across servers (a client whose server died
/// comes back on another one and gets every event it missed, whichever server emitted it).
///
/// With such an adapter and recovery on, a replayable broadcast (not volatile, not `local`) is not
/// written to this server's sockets at once: ``broadcastSequenced(_:outcome:)`` hands it to the
/// cluster, which gives it the namespace's next offset and keeps it where every server can read it
/// back, in one step; every server, this one included, then gets it back and hands it to
/// ``SocketIOLocalSockets/deliverSequenced(_:fromPeer:data:delivered:)`` in offset order. Events
/// emitted to one socket and `local` broadcasts carry no offset then: the cluster's order has
/// no place for what only one server writes.
public protocol SocketIOSequencingAdapter: SocketIOAdapter {
    /// Whether it sequences now (a cluster set up without a place to keep events does not).
    var isSequencing: Bool { get }
    /// Publishes a replayable broadcast for every server of the cluster, this one included;
    /// `outcome` is told once how that went (after this server wrote it to its own sockets, when
    /// it was published).
    func broadcastSequenced(_ broadcast: SocketIOSequencedBroadcast, outcome: @escaping @Sendable (SocketIOSequencedOutcome) -> Void)
}

/// A replayable broadcast on its way to a sequencing cluster.
public struct SocketIOSequencedBroadcast: Sendable {
    /// The selection (never volatile).
    public let options: SocketIOBroadcastOptions
    /// The queue message it comes from: the cluster publishes one event per message id.
    public let messageID: String?
    /// The packet as every client gets it: the given offset is its last argument.
    public let packet: @Sendable (UInt64) -> SocketIOOutboundPacket
    /// The packet without an offset, for servers of the cluster that do not sequence.
    public let plainPacket: SocketIOOutboundPacket

    /// The event as the cluster keeps it once it has `offset`.
    public func event(namespace: String, offset: UInt64, emittedAt: Date = Date()) -> SocketIOStoredEvent {
        SocketIOStoredEvent(
            namespace: namespace, offset: offset, rooms: options.rooms, except: options.except,
            payloads: packet(offset).frames.compactMap(\.packet.payload), emittedAt: emittedAt, messageID: messageID)
    }
}

/// How a sequenced broadcast went.
public enum SocketIOSequencedOutcome: Sendable, Hashable {
    /// Published with its offset, and written to this many of this server's sockets.
    case delivered(localRecipients: Int)
    /// The cluster already holds an event of its message id: nothing was sent.
    case duplicate
    /// It could not be published: no server got it.
    case failed
}

/// What ``SocketIOLocalSockets/deliverSequenced(_:fromPeer:data:delivered:)`` did with an event.
public enum SocketIOSequencedDelivery: Sendable, Hashable {
    /// It was the next one: it is logged and on its way to the sockets.
    case delivered
    /// Its offset was delivered before (a notification that overlaps a catch-up, say).
    case seen
    /// Events between the last one delivered (`after`) and it are missing: deliver those first.
    case missing(after: UInt64)
}
