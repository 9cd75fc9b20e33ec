import Synchronization

/// Counters of what a Socket.IO server refused to keep, for metrics.
public final class SocketIOStatistics: Sendable {
    private let eventBacklogs = Atomic<Int>(0)
    private let eventRates = Atomic<Int>(0)
    private let removedNamespaces = Atomic<Int>(0)
    private let recovered = Atomic<Int>(0)
    private let unknownSessions = Atomic<Int>(0)
    private let unknownOffsets = Atomic<Int>(0)
    private let tooManyMissed = Atomic<Int>(0)
    private let replayed = Atomic<Int>(0)

    init() {}

    /// Sockets disconnected because more than
    /// ``SocketIOConfiguration/maxPendingEventsPerSocket`` of their events waited for handlers.
    public var eventBacklogDisconnects: Int { eventBacklogs.load(ordering: .relaxed) }
    /// Sockets disconnected because their client sent events faster than
    /// ``SocketIOConfiguration/eventRateLimit``.
    public var eventRateDisconnects: Int { eventRates.load(ordering: .relaxed) }
    /// Dynamic namespaces removed once empty (``SocketIOConfiguration/cleanupEmptyChildNamespaces``).
    public var emptyNamespacesRemoved: Int { removedNamespaces.load(ordering: .relaxed) }

    /// Clients that asked to recover a session (connection state recovery), by what they got.
    public func recoveries(_ outcome: SocketIORecoveryOutcome) -> Int {
        switch outcome {
        case .recovered: recovered.load(ordering: .relaxed)
        case .unknownSession: unknownSessions.load(ordering: .relaxed)
        case .unknownOffset: unknownOffsets.load(ordering: .relaxed)
        case .tooManyMissed: tooManyMissed.load(ordering: .relaxed)
        }
    }
    /// Events replayed to recovered sockets.
    public var eventsReplayed: Int { replayed.load(ordering: .relaxed) }

    func recovery(_ outcome: SocketIORecoveryOutcome, replayed events: Int = 0) {
        switch outcome {
        case .recovered: recovered.add(1, ordering: .relaxed)
        case .unknownSession: unknownSessions.add(1, ordering: .relaxed)
        case .unknownOffset: unknownOffsets.add(1, ordering: .relaxed)
        case .tooManyMissed: tooManyMissed.add(1, ordering: .relaxed)
        }
        if events > 0 { replayed.add(events, ordering: .relaxed) }
    }

    func eventBacklogDisconnected() { eventBacklogs.add(1, ordering: .relaxed) }
    func eventRateLimited() { eventRates.add(1, ordering: .relaxed) }
    func emptyNamespaceRemoved() { removedNamespaces.add(1, ordering: .relaxed) }
}

/// What a client that asked to recover its session got.
public enum SocketIORecoveryOutcome: Sendable, CaseIterable {
    /// Its socket back, with the events it missed.
    case recovered
    /// A new session: its pid is unknown, or its window ended.
    case unknownSession
    /// A new session: its offset is not one the log can answer from (malformed, or older than
    /// what is kept).
    case unknownOffset
    /// A new session: it missed more events than ``SocketIOConnectionStateRecovery/maxReplayedEvents``.
    case tooManyMissed

    /// The outcome's name in metrics.
    public var label: String {
        switch self {
        case .recovered: "recovered"
        case .unknownSession: "unknown_session"
        case .unknownOffset: "unknown_offset"
        case .tooManyMissed: "too_many_missed"
        }
    }
}
