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
final class SocketIORecoveryLog: Sendable {
    struct Entry: Sendable {
        let offset: UInt64
        let rooms: Set<String>
        let except: Set<String>
        let frames: [EngineIOFrame]
        let bytes: Int
        let time: ContinuousClock.Instant
    }

    /// What a recovering socket gets back.
    enum Replay: Sendable {
        /// The events it missed, oldest first, each as its frames.
        case events([[EngineIOFrame]])
        /// Its offset is not one this log can answer from (unknown, or older than what is kept).
        case unknownOffset
        /// It missed more than the replay limit.
        case tooMany
    }

    private struct State {
        var entries = CircularBuffer<Entry>()
        /// The offset of the last event appended (the first one gets `lastOffset + 1`).
        var lastOffset: UInt64
        var bytes = 0
    }

    private let state: Mutex<State>
    let window: Duration
    let maxBytes: Int

    /// A log whose first offset follows `lastOffset`: by default the wall clock in microseconds,
    /// so that offsets handed out before a restart are not handed out again.
    init(window: Duration, maxBytes: Int, lastOffset: UInt64 = UInt64(Date().timeIntervalSince1970 * 1_000_000)) {
        self.window = window
        self.maxBytes = maxBytes
        self.state = Mutex(State(lastOffset: lastOffset))
    }

    /// The offset of the last event appended.
    var lastOffset: UInt64 { state.withLock { $0.lastOffset } }

    /// How many events are kept.
    var count: Int { state.withLock { $0.entries.count } }

    /// Appends the event that `packet` makes with its offset, and hands it to `deliver` while
    /// still holding the lock (the caller queues it on the event loops there, in offset order).
    func append(
        _ options: SocketIOBroadcastOptions,
        packet: (String?) -> SocketIOOutboundPacket,
        now: ContinuousClock.Instant = .now,
        deliver: (SocketIOOutboundPacket) -> Void
    ) {
        state.withLock { state in
            let offset = state.lastOffset &+ 1
            let outbound = packet(SocketIORecoveryOffset.text(offset))
            let frames = outbound.frames
            let bytes = frames.reduce(0) { $0 + $1.webSocketFrame.readableBytes }
            let entry = Entry(offset: offset, rooms: options.rooms, except: options.except, frames: frames, bytes: bytes, time: now)
            state.lastOffset = offset
            state.entries.append(entry)
            state.bytes += bytes
            prune(&state, now: now)
            deliver(outbound)
        }
    }

    /// Runs `admit` on `loop` after every broadcast logged so far has run there, passing it the
    /// last offset logged so far.
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

    /// Whether ``replay(after:through:rooms:limit:now:)`` would give events back, without
    /// gathering them.
    func canReplay(after offset: UInt64, through: UInt64, rooms: Set<String>, limit: Int, now: ContinuousClock.Instant = .now) -> Bool {
        walk(after: offset, through: through, rooms: rooms, limit: limit, now: now) { _ in } == nil
    }

    /// Visits the entries a replay gives back, in order; returns why there is no replay, if so.
    private func walk(
        after offset: UInt64, through: UInt64, rooms: Set<String>, limit: Int, now: ContinuousClock.Instant, _ visit: (Entry) -> Void
    ) -> Replay? {
        state.withLock { state in
            prune(&state, now: now)
            guard offset <= state.lastOffset else { return .unknownOffset }
            // Offsets are consecutive: the event after `offset` sits at a known index, if kept.
            let first = state.entries.first?.offset ?? state.lastOffset &+ 1
            guard offset &+ 1 >= first else { return .unknownOffset }
            var selected = 0
            var index = state.entries.index(state.entries.startIndex, offsetBy: Int(offset &+ 1 - first))
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

    /// Whether a broadcast to `entry`'s rooms, except its exceptions, reached a socket in `rooms`.
    static func selects(_ entry: Entry, _ rooms: Set<String>) -> Bool {
        (entry.rooms.isEmpty || !entry.rooms.isDisjoint(with: rooms)) && entry.except.isDisjoint(with: rooms)
    }

    private func prune(_ state: inout State, now: ContinuousClock.Instant) {
        while let oldest = state.entries.first, now - oldest.time > window || state.bytes > maxBytes {
            state.bytes -= oldest.bytes
            state.entries.removeFirst()
        }
    }
}
