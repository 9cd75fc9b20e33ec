import Synchronization

/// Counters of what a Socket.IO server refused to keep, for metrics.
public final class SocketIOStatistics: Sendable {
    private let eventBacklogs = Atomic<Int>(0)
    private let removedNamespaces = Atomic<Int>(0)

    init() {}

    /// Sockets disconnected because more than
    /// ``SocketIOConfiguration/maxPendingEventsPerSocket`` of their events waited for handlers.
    public var eventBacklogDisconnects: Int { eventBacklogs.load(ordering: .relaxed) }
    /// Dynamic namespaces removed once empty (``SocketIOConfiguration/cleanupEmptyChildNamespaces``).
    public var emptyNamespacesRemoved: Int { removedNamespaces.load(ordering: .relaxed) }

    func eventBacklogDisconnected() { eventBacklogs.add(1, ordering: .relaxed) }
    func emptyNamespaceRemoved() { removedNamespaces.add(1, ordering: .relaxed) }
}
