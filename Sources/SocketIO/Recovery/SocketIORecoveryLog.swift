import EngineIO
import Foundation
import NIOCore
import Synchronization

/// The events of one namespace that a recovering socket may have missed: each replayable
/// broadcast once (never per recipient), with its selection, under an increasing offset.
///
/// Offsets are handed out under the log's lock, and the broadcast is handed to the event loops
/// under the same lock (``append(_:packet:deliver:)``): every loop therefore runs the namespace's
/// logged broadcasts in offset order. A recovering socket is admitted the same way
/// (``admitInOrder(on:_:)``): on its loop, every broadcast up to the offset it read ran before it
/// (and did not reach it, it was not in its rooms yet), every later one runs after it (and
/// reaches it, it is in its rooms by then). So replaying the log up to that offset and joining
/// the rooms neither loses nor repeats an event.
///
/// With a store, an event is handed to the loops only once the store kept it (in offset order,
/// when the writer reports it durable): a client never holds an event that a crash could lose, so
/// replaying from the store after a restart repeats nothing. Offsets may then have gaps (a
/// restarted log goes on from the wall clock), so entries are found by binary search.
final class SocketIORecoveryLog: Sendable {
    struct Entry: Sendable {
        let offset: UInt64
        let rooms: Set<String>
        let except: Set<String>
        let frames: [EngineIOFrame]
        let bytes: Int
        let time: ContinuousClock.Instant
        let messageID: String?
    }

    /// What a recovering socket gets back.
    enum Replay: Sendable {
        /// The events it missed, oldest first, each as its frames.
        case events([[EngineIOFrame]])
        /// Its offset is not one this log can answer from (unknown, or older than what is kept).
        case unknownOffset
        /// It missed more than the replay limit.
        case tooMany

        /// The outcome of a recovery refused for this reason.
        var outcome: SocketIORecoveryOutcome {
            switch self {
            case .events: .recovered
            case .unknownOffset: .unknownOffset
            case .tooMany: .tooManyMissed
            }
        }
    }

    /// An event waiting for the store, with what hands it to the loops.
    private struct Pending {
        let entry: Entry
        let outbound: SocketIOOutboundPacket
        let deliver: @Sendable (SocketIOOutboundPacket) -> Void
    }

    private struct State {
        var entries = CircularBuffer<Entry>()
        /// The offset of the last event handed to the loops.
        var lastOffset: UInt64
        /// The offset of the last event appended (waiting for the store, or handed to the loops).
        var lastAssigned: UInt64
        /// The log answers for clients that have seen everything up to this offset or later:
        /// what was before it is gone.
        var floor: UInt64
        var bytes = 0
        var pending: [Pending] = []
        /// The queue message ids of the kept and pending events.
        var messageIDs: Set<String> = []
        /// With a sequencing cluster: whether `lastOffset` is the cluster's (the next event is
        /// then `lastOffset + 1`), rather than this log's own start.
        var sequenceKnown = false
    }

    private let state: Mutex<State>
    let namespace: String
    let window: Duration
    let maxBytes: Int
    /// Where events are kept before they are handed to the loops; `nil`: in memory only.
    let writer: SocketIORecoveryWriter?

    /// A log whose first offset follows `lastOffset`: by default the wall clock in microseconds,
    /// so that offsets handed out before a restart are not handed out again.
    init(
        namespace: String, window: Duration, maxBytes: Int, writer: SocketIORecoveryWriter? = nil,
        lastOffset: UInt64 = UInt64(Date().timeIntervalSince1970 * 1_000_000)
    ) {
        self.namespace = namespace
        self.window = window
        self.maxBytes = maxBytes
        self.writer = writer
        self.state = Mutex(State(lastOffset: lastOffset, lastAssigned: lastOffset, floor: lastOffset))
    }

    /// The offset of the last event handed to the loops.
    var lastOffset: UInt64 { state.withLock { $0.lastOffset } }

    /// How many events are kept (handed to the loops).
    var count: Int { state.withLock { $0.entries.count } }

    /// Takes back the events a store kept from before a restart (oldest first, before anything
    /// is appended): offsets go on after the newest of them, or after the wall clock when later.
    func restore(_ events: [SocketIOStoredEvent], now: ContinuousClock.Instant = .now, wallClock: Date = Date()) {
        state.withLock { state in
            for event in events {
                let frames = event.payloads.map { EngineIOFrame(EngineIOPacket(.message, $0)) }
                let bytes = frames.reduce(0) { $0 + $1.webSocketFrame.readableBytes }
                let age = max(0, wallClock.timeIntervalSince(event.emittedAt))
                let entry = Entry(
                    offset: event.offset, rooms: event.rooms, except: event.except, frames: frames, bytes: bytes,
                    time: now - .milliseconds(Int64(age * 1000)), messageID: event.messageID)
                if let last = state.entries.last, entry.offset <= last.offset { continue }
                state.entries.append(entry)
                state.bytes += bytes
                if let id = event.messageID { state.messageIDs.insert(id) }
            }
            // What the store kept answers for its window: a client of the run before has seen
            // everything older (it was connected when it was emitted).
            state.floor = 0
            let newest = state.entries.last?.offset ?? 0
            state.lastOffset = max(state.lastOffset, newest)
            state.lastAssigned = state.lastOffset
            prune(&state, now: now)
        }
    }

    /// Lets the queue message `messageID` be broadcast again: its event did not reach the cluster.
    func forget(messageID: String) {
        state.withLock { _ = $0.messageIDs.remove(messageID) }
    }

    /// Appends the event that `packet` makes with its offset, and hands it to `deliver` under the
    /// lock (the caller queues it on the event loops there, in offset order): at once without a
    /// store, once the store kept it with one. Returns `false`, appending nothing, when an event
    /// of the queue message `messageID` is already in the log.
    @discardableResult
    func append(
        _ options: SocketIOBroadcastOptions,
        messageID: String? = nil,
        packet: (String?) -> SocketIOOutboundPacket,
        now: ContinuousClock.Instant = .now,
        deliver: @escaping @Sendable (SocketIOOutboundPacket) -> Void
    ) -> Bool {
        state.withLock { state in
            if let messageID, state.messageIDs.contains(messageID) { return false }
            let offset = state.lastAssigned &+ 1
            let outbound = packet(SocketIORecoveryOffset.text(offset))
            let frames = outbound.frames
            let bytes = frames.reduce(0) { $0 + $1.webSocketFrame.readableBytes }
            let entry = Entry(
                offset: offset, rooms: options.rooms, except: options.except, frames: frames, bytes: bytes, time: now, messageID: messageID)
            state.lastAssigned = offset
            if let messageID { state.messageIDs.insert(messageID) }
            guard let writer else {
                keep(entry, &state, now: now)
                deliver(outbound)
                return true
            }
            state.pending.append(Pending(entry: entry, outbound: outbound, deliver: deliver))
            writer.submit(
                SocketIOStoredEvent(
                    namespace: namespace, offset: offset, rooms: options.rooms, except: options.except,
                    payloads: frames.compactMap(\.packet.payload), emittedAt: Date(), messageID: messageID),
                of: self)
            return true
        }
    }

    /// The store kept every event up to `offset`: they go to the loops, in order.
    func stored(through offset: UInt64, now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            var handed = 0
            for pending in state.pending {
                guard pending.entry.offset <= offset else { break }
                keep(pending.entry, &state, now: now)
                pending.deliver(pending.outbound)
                handed += 1
            }
            state.pending.removeFirst(handed)
        }
    }

    /// An event the cluster gave its offset (``SocketIOSequencingAdapter``): kept and handed to
    /// `deliver` under the lock when it is the next one, so that every loop runs the namespace's
    /// events in offset order. The first event after the log started is taken as it comes, unless
    /// ``startSequence(after:)`` said where the cluster's sequence stands.
    func appendSequenced(
        _ event: SocketIOStoredEvent, now: ContinuousClock.Instant = .now, deliver: (SocketIOOutboundPacket) -> Void
    )
        -> SocketIOSequencedDelivery
    {
        state.withLock { state in
            if let position = Self.sequencePosition(state) {
                if event.offset <= position { return .seen }
                if event.offset != position &+ 1 { return .missing(after: position) }
            }
            let frames = event.payloads.map { EngineIOFrame(EngineIOPacket(.message, $0)) }
            let bytes = frames.reduce(0) { $0 + $1.webSocketFrame.readableBytes }
            let age = max(0, Date().timeIntervalSince(event.emittedAt))
            let entry = Entry(
                offset: event.offset, rooms: event.rooms, except: event.except, frames: frames, bytes: bytes,
                time: now - .milliseconds(Int64(age * 1000)), messageID: event.messageID)
            state.sequenceKnown = true
            state.lastAssigned = event.offset
            if let id = event.messageID { state.messageIDs.insert(id) }
            keep(entry, &state, now: now)
            deliver(SocketIOOutboundPacket(frames: frames))
            return .delivered
        }
    }

    /// Where the cluster's sequence stands for this log: the last event appended once it is
    /// known, else the newest event kept (0 when none).
    var sequencePosition: UInt64 {
        state.withLock { Self.sequencePosition($0) ?? 0 }
    }

    /// The last event of the cluster's sequence this log has, `nil` when it has none.
    private static func sequencePosition(_ state: State) -> UInt64? {
        state.sequenceKnown ? state.lastOffset : state.entries.last?.offset
    }

    /// The cluster's sequence of this namespace stands at `last` (every event up to it was
    /// appended, or is gone from the cluster too): the next event expected is `last + 1`. Never
    /// goes back behind an event kept.
    func startSequence(after last: UInt64) {
        state.withLock { state in
            guard last >= (state.entries.last?.offset ?? 0) else { return }
            state.lastOffset = last
            state.lastAssigned = last
            state.floor = min(state.floor, last)
            state.sequenceKnown = true
        }
    }

    private func keep(_ entry: Entry, _ state: inout State, now: ContinuousClock.Instant) {
        state.lastOffset = entry.offset
        state.entries.append(entry)
        state.bytes += entry.bytes
        prune(&state, now: now)
    }

    /// Runs `admit` on `loop` after every broadcast handed to the loops so far has run there,
    /// passing it the offset of the last of them.
    func admitInOrder(on loop: any EventLoop, _ admit: @escaping @Sendable (UInt64) -> Void) {
        state.withLock { state in
            let offset = state.lastOffset
            loop.execute { admit(offset) }
        }
    }

    /// The events after `offset` up to `through` that a socket in `rooms` was selected for, at
    /// most `limit` of them.
    func replay(after offset: UInt64, through: UInt64, rooms: Set<String>, limit: Int, now: ContinuousClock.Instant = .now) -> Replay {
        var events: [[EngineIOFrame]] = []
        let refusal = walk(after: offset, through: through, rooms: rooms, limit: limit, now: now) { events.append($0.frames) }
        return refusal ?? .events(events)
    }

    /// Why ``replay(after:through:rooms:limit:now:)`` would give no events back (`nil`: it
    /// would), without gathering them.
    func refusal(after offset: UInt64, through: UInt64, rooms: Set<String>, limit: Int, now: ContinuousClock.Instant = .now) -> Replay? {
        walk(after: offset, through: through, rooms: rooms, limit: limit, now: now) { _ in }
    }

    /// Visits the entries a replay gives back, in order; returns why there is no replay, if so.
    private func walk(
        after offset: UInt64, through: UInt64, rooms: Set<String>, limit: Int, now: ContinuousClock.Instant, _ visit: (Entry) -> Void
    ) -> Replay? {
        state.withLock { state in
            prune(&state, now: now)
            guard offset <= state.lastOffset, offset >= state.floor else { return .unknownOffset }
            var selected = 0
            var index = Self.firstIndex(after: offset, in: state.entries)
            while index != state.entries.endIndex {
                let entry = state.entries[index]
                if entry.offset > through { break }
                if Self.selects(entry, rooms) {
                    if selected == limit { return .tooMany }
                    selected += 1
                    visit(entry)
                }
                index = state.entries.index(after: index)
            }
            return nil
        }
    }

    /// The index of the first entry whose offset is past `offset` (offsets increase).
    private static func firstIndex(after offset: UInt64, in entries: CircularBuffer<Entry>) -> CircularBuffer<Entry>.Index {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[entries.index(entries.startIndex, offsetBy: middle)].offset <= offset {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return entries.index(entries.startIndex, offsetBy: low)
    }

    /// Whether a broadcast to `entry`'s rooms, except its exceptions, reached a socket in `rooms`.
    static func selects(_ entry: Entry, _ rooms: Set<String>) -> Bool {
        (entry.rooms.isEmpty || !entry.rooms.isDisjoint(with: rooms)) && entry.except.isDisjoint(with: rooms)
    }

    private func prune(_ state: inout State, now: ContinuousClock.Instant) {
        while let oldest = state.entries.first, now - oldest.time > window || state.bytes > maxBytes {
            state.bytes -= oldest.bytes
            state.floor = max(state.floor, oldest.offset)
            if let id = oldest.messageID { state.messageIDs.remove(id) }
            state.entries.removeFirst()
        }
    }
}
