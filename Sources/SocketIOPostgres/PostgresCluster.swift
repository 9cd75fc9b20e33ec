import Foundation
public import Logging
import Metrics
import NIOCore
public import SocketIO
import Synchronization

/// One Socket.IO server's membership of a cluster over PostgreSQL: the adapters of its namespaces
/// (``adapterFactory``), and the task that carries their messages (``run(namespaces:)``).
///
/// Speaks socket.io-adapter's cluster protocol as `@socket.io/postgres-adapter` 0.5 does, so
/// that herald nodes and Node socket.io servers with that adapter form one cluster: broadcasts
/// (rooms, exceptions, volatile), `socketsJoin`, `socketsLeave` and `disconnectSockets` reach the
/// sockets of every node, and `fetchSockets` gathers every node's. Each namespace keeps its own peers from their heartbeats, as the
/// reference does: a node that published nothing for ``Configuration/heartbeatInterval`` sends a
/// heartbeat, a peer silent for ``Configuration/heartbeatTimeout`` is forgotten, and one that
/// closes says so (ADAPTER_CLOSE).
///
/// ```swift
/// let cluster = PostgresCluster(transport: transport, logger: logger)
/// let io = SocketIOServer(configuration: configuration, adapter: cluster.adapterFactory)
/// // beside the HTTP server:
/// await cluster.run(namespaces: ["/"])
/// ```
public final class PostgresCluster: Sendable {
    /// Heartbeat settings; the defaults are the reference's.
    public struct Configuration: Sendable {
        public var heartbeatInterval: Duration = .seconds(5)
        public var heartbeatTimeout: Duration = .seconds(10)
        /// How long a publish may wait for PostgreSQL before it counts as failed (while the
        /// database restarts, say, the pool would hold it until it is back).
        public var publishTimeout: Duration = .seconds(5)

        public init() {}
    }

    /// This node's id in the cluster.
    public let uid: String
    public let transport: PostgresClusterTransport
    public let configuration: Configuration
    /// Where replayable broadcasts get their cluster-wide offsets and are kept (recovery across
    /// nodes); `nil`: the cluster does not sequence them.
    public let recovery: PostgresRecoveryStore?
    let logger: Logger
    let metrics = PostgresClusterMetrics()
    /// This node's sequenced broadcasts on their way back to it, by reference.
    private let returning = Mutex<[String: @Sendable (SocketIOSequencedOutcome) -> Void]>([:])
    private let adapters = Mutex<[String: PostgresAdapter]>([:])
    /// Messages to publish, in the order they were made.
    private let outbox = PublishQueue<Outgoing>()
    private let barriers = ClusterBarrier()
    /// The most messages one publish carries. One: with 64, three saturated nodes on two cores
    /// saw single publishes take over 5 s on the node's side (the database logged no statement
    /// over 300 ms), and the publish API answered 503; larger batches wait for that to be understood.
    static let maxBatch = 1

    private struct Outgoing: Sendable {
        let message: SocketIOClusterMessage
        /// Told whether the message was published.
        let published: (@Sendable (Bool) -> Void)?
        let queued: ContinuousClock.Instant
        /// A replayable broadcast to sequence: `message` gets its offset and reference.
        var sequenced: Sequenced?
    }

    private struct Sequenced: Sendable {
        let broadcast: SocketIOSequencedBroadcast
        /// Names the broadcast when it comes back to this node.
        let reference: String
        let outcome: @Sendable (SocketIOSequencedOutcome) -> Void
    }

    /// A node of the cluster over `transport`; with `recovery` (a store whose configuration names
    /// this node's ``uid``), connection state recovery works across the nodes.
    public init(transport: PostgresClusterTransport, configuration: Configuration = .init(), recovery: PostgresRecoveryStore? = nil, logger: Logger) {
        self.uid = recovery?.configuration.node ?? Self.makeUID()
        self.transport = transport
        self.configuration = configuration
        self.recovery = recovery
        self.logger = logger
    }

    /// A new node id.
    public static func makeUID() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(generator.next(), radix: 16)
    }

    /// Makes each namespace's adapter; give it to ``SocketIOServer/init(configuration:adapter:)``.
    public var adapterFactory: SocketIOAdapterFactory {
        { [self] sockets in
            let adapter = PostgresAdapter(cluster: self, sockets: sockets)
            // A parent of dynamic namespaces ("<dynamic>") has no channel: its children do.
            guard sockets.namespace.hasPrefix("/") else { return adapter }
            let joins = adapters.withLock { adapters in
                defer { adapters[sockets.namespace] = adapter }
                return running.withLock { $0 } && adapters[sockets.namespace] == nil
            }
            if joins {
                // A namespace made while the cluster runs (a dynamic one): listened to from now on.
                transport.listen(toMore: sockets.namespace)
                send(.initialHeartbeat, namespace: sockets.namespace)
            }
            return adapter
        }
    }

    /// Whether ``run(namespaces:)`` listens.
    private let running = Mutex(false)

    /// The number of servers of a namespace's cluster: this one and its live peers.
    public func serverCount(namespace: String = "/") -> Int {
        1 + peers(namespace: namespace).count
    }

    /// The uids of a namespace's live peers.
    public func peers(namespace: String = "/") -> [String] {
        adapters.withLock { $0[namespace] }?.peers ?? []
    }

    /// Queues a message of this node for publishing, in order; `published` is told whether it was.
    func send(
        _ type: SocketIOClusterMessageType, namespace: String, data: SocketIOValue? = nil, published: (@Sendable (Bool) -> Void)? = nil
    ) {
        let message = SocketIOClusterMessage(uid: uid, namespace: namespace, type: type, data: data)
        if !outbox.push(Outgoing(message: message, published: published, queued: .now)) { published?(false) }
    }

    /// Queues a replayable broadcast to sequence (``SocketIOSequencingAdapter``), in order with
    /// the node's other messages.
    func sendSequenced(
        _ broadcast: SocketIOSequencedBroadcast, data: SocketIOObject, namespace: String,
        outcome: @escaping @Sendable (SocketIOSequencedOutcome) -> Void
    ) {
        let reference = Self.makeUID()
        var data = data
        data[Self.referenceKey] = .string(reference)
        let message = SocketIOClusterMessage(uid: uid, namespace: namespace, type: .broadcast, data: .object(data))
        let outgoing = Outgoing(
            message: message, published: nil, queued: .now, sequenced: Sequenced(broadcast: broadcast, reference: reference, outcome: outcome))
        if !outbox.push(outgoing) { outcome(.failed) }
    }

    /// The keys a sequenced BROADCAST adds to its data (Node servers ignore them).
    static let offsetKey = "offset"
    static let referenceKey = "herald_ref"

    /// Carries the cluster's messages until the task is cancelled: listens on the channels of
    /// `namespaces`, publishes what the adapters send in order, announces itself in each
    /// namespace, keeps the heartbeats and forgets silent peers; when cancelled, tells the peers
    /// it leaves, once what was queued before is published.
    public func run(namespaces: [String]) async {
        // Not a child task: a cancelled run still publishes what its adapters queued, and each
        // message learns whether it was published (a publish gets its timeout at most).
        let publishing = Task { await self.publishOutbox() }
        // The namespaces that exist listen from the start, with those made meanwhile.
        let namespaces = adapters.withLock { adapters in
            running.withLock { $0 = true }
            return namespaces + adapters.keys.filter { !namespaces.contains($0) }.sorted()
        }
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.transport.listen(to: namespaces, listening: { try await self.catchUp() }) { await self.receive($0) }
            }
            group.addTask { await self.transport.cleanUp() }
            group.addTask { await self.keepHeartbeats() }
            for namespace in namespaces { send(.initialHeartbeat, namespace: namespace) }
            await withTaskCancellationHandler {
                await Task.cancelledSleep()
            } onCancel: {
                self.outbox.finish()
            }
            group.cancelAll()
        }
        await publishing.value
        // The peers forget this node at once rather than after their heartbeat timeout (on a task
        // of its own: this one is cancelled, and so would be its queries).
        // A database that is gone gets one publish timeout, not the rest of the shutdown.
        let left = adapters.withLock { adapters in namespaces + adapters.keys.filter { !namespaces.contains($0) }.sorted() }
        let goodbyes = left.map { SocketIOClusterMessage(uid: uid, namespace: $0, type: .adapterClose) }
        await Task { [transport] in
            try? await self.withinTimeout { try await transport.publish(goodbyes) }
        }.value
    }

    private func publishOutbox() async {
        // When a publish fails, the messages queued behind it while it waited fail at once: an
        // outage costs each message one timeout at most, not one timeout per message before it.
        var failedAt: ContinuousClock.Instant?
        var failures = 0
        while let batch = await outbox.take(max: Self.maxBatch) {
            for namespace in Set(batch.map(\.message.namespace)) { adapters.withLock { $0[namespace] }?.published() }
            do {
                if let failedAt, batch[0].queued < failedAt {
                    throw PostgresClusterError("an earlier message could not be published either")
                }
                if batch.contains(where: { $0.sequenced != nil }) {
                    for outgoing in batch { try await publishSequenced(outgoing) }
                } else {
                    try await publishWithinTimeout(batch.map(\.message))
                }
                if failures > 0 { logger.notice("Publishing to the cluster works again", metadata: ["failed": "\(failures)"]) }
                (failedAt, failures) = (nil, 0)
                let now = ContinuousClock.now
                for outgoing in batch {
                    metrics.sent(outgoing.message.type)
                    metrics.publishLatency.recordNanoseconds(Self.nanoseconds(now - outgoing.queued))
                    outgoing.published?(true)
                }
            } catch {
                failedAt = .now
                failures += batch.count
                metrics.publishFailures.increment(by: batch.count)
                for outgoing in batch {
                    outgoing.published?(false)
                    if let sequenced = outgoing.sequenced, let outcome = returning.withLock({ $0.removeValue(forKey: sequenced.reference) }) {
                        outcome(.failed)
                    }
                }
                if failures == batch.count {
                    logger.error(
                        "Could not publish to the cluster; what fails to publish is counted in socketio_cluster_publish_failures_total",
                        metadata: ["type": "\(batch[0].message.type)", "error": "\(String(reflecting: error))"])
                }
            }
        }
    }

    /// Sequences and publishes one outgoing message (a plain one is published as it is).
    private func publishSequenced(_ outgoing: Outgoing) async throws {
        guard let sequenced = outgoing.sequenced, let recovery else { return try await publishWithinTimeout([outgoing.message]) }
        let (message, transport) = (outgoing.message, transport)
        returning.withLock { $0[sequenced.reference] = sequenced.outcome }
        let offset = try await withinTimeout {
            try await recovery.sequence(
                namespace: message.namespace, messageID: sequenced.broadcast.messageID,
                event: { sequenced.broadcast.event(namespace: message.namespace, offset: $0) },
                publish: { offset, connection in
                    var numbered = message
                    numbered.data = message.data.map { data in
                        var object = data.objectValue ?? [:]
                        object[Self.offsetKey] = .string(String(offset))
                        return .object(object)
                    }
                    try await transport.publish(numbered, on: connection)
                })
        }
        guard offset != nil else {
            returning.withLock { $0.removeValue(forKey: sequenced.reference) }?(.duplicate)
            return
        }
        // Committed: it comes back through the listening connection, or, should that be down, with
        // the catch-up once it listens again; the outcome does not wait longer than a publish may.
        let timeout = configuration.publishTimeout
        Task { [self] in
            try? await Task.sleep(for: timeout)
            returning.withLock { $0.removeValue(forKey: sequenced.reference) }?(.delivered(localRecipients: 0))
        }
    }

    private func publishWithinTimeout(_ messages: [SocketIOClusterMessage]) async throws {
        try await withinTimeout { try await self.transport.publish(messages) }
    }

    /// Runs `body`, failing when it takes longer than ``Configuration/publishTimeout``. The
    /// caller does not wait for a `body` that ignores its cancellation (a query on a connection
    /// the server dropped mid-transaction can hang until the socket gives up): the publishes
    /// behind it go on.
    private func withinTimeout<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
        let timeout = configuration.publishTimeout
        let outcome = FirstOutcome<Result>()
        return try await withCheckedThrowingContinuation { continuation in
            outcome.start(continuation)
            let work = Task {
                do { outcome.finish(.success(try await body())) } catch { outcome.finish(.failure(error)) }
            }
            Task {
                try? await Task.sleep(for: timeout)
                outcome.finish(.failure(PostgresClusterError("PostgreSQL did not answer within \(timeout)")))
                work.cancel()
            }
        }
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    private func keepHeartbeats() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.heartbeatInterval / 2)
            let now = ContinuousClock.now
            for adapter in adapters.withLock({ Array($0.values) }) {
                if adapter.tick(now: now, interval: configuration.heartbeatInterval, timeout: configuration.heartbeatTimeout) {
                    send(.heartbeat, namespace: adapter.namespace)
                }
            }
        }
    }

    /// Waits until this node received every message of `namespace`'s channel that PostgreSQL
    /// committed before the call (at most `timeout`; `false` when that ran out): what another
    /// node published before then reaches this node's clients before what this node writes next.
    /// Costs one notification, shared by the calls made while it is on its way.
    public func barrier(namespace: String, timeout: Duration = .seconds(2)) async -> Bool {
        let (marker, isNew) = barriers.marker(for: namespace)
        if isNew {
            send(.heartbeat, namespace: namespace, data: [Self.barrierKey: .number(Double(marker))]) { [barriers] _ in
                barriers.committed(marker, namespace: namespace)
            }
        }
        let passed = await barriers.wait(for: marker, namespace: namespace, timeout: timeout)
        (passed ? metrics.barriers.passed : metrics.barriers.timedOut).increment()
        return passed
    }

    private static let barrierKey = "barrier"

    private func receive(_ message: SocketIOClusterMessage) async {
        if recovery != nil, message.type == .broadcast, let text = message.data?[Self.offsetKey]?.stringValue, let offset = UInt64(text) {
            return await receiveSequenced(message, offset: offset)
        }
        guard message.uid != uid else {
            if message.type == .heartbeat, let marker = message.data?[Self.barrierKey]?.intValue {
                barriers.arrived(marker, namespace: message.namespace)
            }
            return
        }
        guard let adapter = adapters.withLock({ $0[message.namespace] }) else { return }
        metrics.received(message.type)
        if adapter.receive(message) { send(.heartbeat, namespace: message.namespace) }
    }

    // MARK: Sequenced broadcasts

    /// A sequenced broadcast, this node's own included: delivered in offset order, after the
    /// events before it that this node missed (read back from the recovery tables).
    private func receiveSequenced(_ message: SocketIOClusterMessage, offset: UInt64) async {
        guard let adapter = adapters.withLock({ $0[message.namespace] }) else { return }
        let own = message.uid == uid
        if !own {
            metrics.received(message.type)
            adapter.notePeer(message)
        }
        guard let packet = message.data?["packet"], let data = packet["data"]?.arrayValue,
            let event = PostgresAdapter.sequencedEvent(
                packet, namespace: message.namespace, parser: adapter.sockets.parser, offset: offset, message: message)
        else {
            logger.warning("Ignored a sequenced cluster broadcast that could not be read", metadata: ["from": "\(message.uid)"])
            return
        }
        var outcome: (@Sendable (SocketIOSequencedOutcome) -> Void)?
        if own, let reference = message.data?[Self.referenceKey]?.stringValue {
            outcome = returning.withLock { $0.removeValue(forKey: reference) }
        }
        var delivered: (@Sendable (Int) -> Void)?
        if let outcome { delivered = { outcome(.delivered(localRecipients: $0)) } }
        var result = adapter.sockets.deliverSequenced(event, fromPeer: !own, data: .array(data), delivered: delivered)
        if case .missing(let after) = result {
            do {
                try await catchUp(adapter, after: after, before: offset)
            } catch {
                logger.error(
                    "Could not read back the cluster's events this node missed; its clients miss them until they reconnect",
                    metadata: ["namespace": "\(message.namespace)", "after": "\(after)", "error": "\(String(reflecting: error))"])
            }
            result = adapter.sockets.deliverSequenced(event, fromPeer: !own, data: .array(data), delivered: delivered)
            if case .missing = result {
                adapter.sockets.startSequence(after: offset - 1)
                result = adapter.sockets.deliverSequenced(event, fromPeer: !own, data: .array(data), delivered: delivered)
            }
        }
        if result == .seen { outcome?(.delivered(localRecipients: 0)) }
    }

    /// Delivers what each sequencing namespace missed while this node did not listen (run each
    /// time the channels are listened to, before their first notification is read).
    private func catchUp() async throws {
        guard recovery != nil else { return }
        for adapter in adapters.withLock({ Array($0.values) }) {
            try await catchUp(adapter, after: adapter.sockets.sequencePosition, before: nil)
        }
    }

    /// Delivers the kept events of `adapter`'s namespace after `after` (and before `before`),
    /// in order; without `before`, the namespace's sequence then stands at the cluster's last offset.
    private func catchUp(_ adapter: PostgresAdapter, after: UInt64, before: UInt64?) async throws {
        guard let recovery else { return }
        let (events, last) = try await recovery.events(of: adapter.namespace, after: after, since: .distantPast)
        for event in events {
            if let before, event.offset >= before { break }
            if case .missing = adapter.sockets.deliverSequenced(event, fromPeer: true) {
                // Gone from the tables too: what is there goes on.
                adapter.sockets.startSequence(after: event.offset - 1)
                _ = adapter.sockets.deliverSequenced(event, fromPeer: true)
            }
        }
        if before == nil, let last { adapter.sockets.startSequence(after: last) }
    }
}

extension Task where Success == Never, Failure == Never {
    /// Sleeps until the task is cancelled.
    static func cancelledSleep() async {
        while !Task<Never, Never>.isCancelled { try? await Task<Never, Never>.sleep(for: .seconds(3600)) }
    }
}

/// A namespace's adapter in a ``PostgresCluster``: sends this server's operations to the other
/// nodes, and applies theirs to this server's sockets.
final class PostgresAdapter: SocketIOSequencingAdapter {
    let namespace: String
    private unowned let cluster: PostgresCluster
    let sockets: SocketIOLocalSockets
    private let state = Mutex(State())

    private struct State {
        var peers: [String: ContinuousClock.Instant] = [:]
        var lastPublished = ContinuousClock.now
        /// Requests waiting for every peer's answer (fetchSockets, serverSideEmit), by request id.
        var requests: [String: Request] = [:]
        /// Broadcasts with acks whose counts and answers may still come, by request id.
        var ackRequests: [String: AckRequest] = [:]
    }

    /// A request that waits for one answer from each peer.
    private struct Request {
        enum Answers {
            case sockets([SocketIORemoteSocket], CheckedContinuation<[SocketIORemoteSocket], any Error>)
            case values([SocketIOValue], CheckedContinuation<[SocketIOValue], any Error>)
        }
        let expected: Int
        var received = 0
        var answers: Answers

        /// Counts one peer's answer (a FETCH_SOCKETS_RESPONSE or SERVER_SIDE_EMIT_RESPONSE's data).
        mutating func add(_ data: SocketIOValue?) {
            received += 1
            switch answers {
            case .sockets(let sockets, let continuation):
                let more = data?["sockets"]?.arrayValue?.compactMap(SocketIORemoteSocket.init(clusterValue:)) ?? []
                answers = .sockets(sockets + more, continuation)
            case .values(let values, let continuation):
                answers = .values(values + [data?["packet"] ?? .null], continuation)
            }
        }

        func finish() {
            switch answers {
            case .sockets(let sockets, let continuation): continuation.resume(returning: sockets)
            case .values(let values, let continuation): continuation.resume(returning: values)
            }
        }

        func timeOut() {
            switch answers {
            case .sockets(_, let continuation):
                continuation.resume(throwing: SocketIOClusterTimeoutError(received: received, expected: expected))
            case .values(let values, let continuation):
                continuation.resume(throwing: SocketIOClusterTimeoutError(received: received, expected: expected, partialResponses: values))
            }
        }
    }

    private struct AckRequest {
        let expect: @Sendable (Int) -> Void
        let respond: @Sendable ([SocketIOValue]) -> Void
    }

    private let peersGauge: Gauge

    init(cluster: PostgresCluster, sockets: SocketIOLocalSockets) {
        self.peersGauge = PostgresClusterMetrics.peers(namespace: sockets.namespace)
        self.cluster = cluster
        self.sockets = sockets
        self.namespace = sockets.namespace
    }

    /// The live peers, by uid.
    var peers: [String] { state.withLock { Array($0.peers.keys) } }

    func published() { state.withLock { $0.lastPublished = .now } }

    /// Forgets silent peers; returns whether a heartbeat is due (nothing published for `interval`).
    func tick(now: ContinuousClock.Instant, interval: Duration, timeout: Duration) -> Bool {
        let (peers, due) = state.withLock { state in
            state.peers = state.peers.filter { now - $0.value <= timeout }
            return (state.peers.count, now - state.lastPublished >= interval)
        }
        peersGauge.record(peers)
        return due
    }

    // MARK: To the other nodes

    func broadcast(_ packet: SocketIOOutboundPacket, options: SocketIOBroadcastOptions, published: (@Sendable (Bool) -> Void)?) {
        guard let value = Self.packetValue(packet) else {
            cluster.logger.error("A broadcast could not be read back for the cluster; the other nodes miss it")
            published?(false)
            return
        }
        cluster.send(.broadcast, namespace: namespace, data: ["packet": value, "opts": Self.options(options)], published: published)
    }

    var isSequencing: Bool { cluster.recovery != nil }

    func broadcastSequenced(_ broadcast: SocketIOSequencedBroadcast, outcome: @escaping @Sendable (SocketIOSequencedOutcome) -> Void) {
        guard let value = Self.packetValue(broadcast.plainPacket) else {
            cluster.logger.error("A broadcast could not be read back for the cluster; no node gets it")
            outcome(.failed)
            return
        }
        cluster.sendSequenced(broadcast, data: ["packet": value, "opts": Self.options(broadcast.options)], namespace: namespace, outcome: outcome)
    }

    func serverCount() -> Int { 1 + peers.count }

    func broadcastWithAck(
        _ packet: SocketIOOutboundPacket, ackID: Int, options: SocketIOBroadcastOptions, expect: @escaping @Sendable (Int) -> Void,
        respond: @escaping @Sendable ([SocketIOValue]) -> Void
    ) -> Int {
        let servers = peers.count
        guard servers > 0 else { return 0 }
        guard let value = Self.packetValue(packet) else {
            cluster.logger.error("A broadcast could not be read back for the cluster; the other nodes miss it")
            return 0
        }
        let id = Self.requestID()
        state.withLock { $0.ackRequests[id] = AckRequest(expect: expect, respond: respond) }
        cluster.send(.broadcast, namespace: namespace, data: ["packet": value, "requestId": .string(id), "opts": Self.options(options)])
        // Counts and answers that come after the broadcast's timeout have no one to go to.
        let timeout = options.timeout ?? .seconds(5)
        Task { [self] in
            try? await Task.sleep(for: timeout)
            _ = state.withLock { $0.ackRequests.removeValue(forKey: id) }
        }
        return servers
    }

    func serverSideEmit(_ packet: [SocketIOValue]) {
        cluster.send(.serverSideEmit, namespace: namespace, data: ["packet": .array(packet)])
    }

    /// Each live peer's answer, waiting up to 5 s (the reference's timeout).
    func serverSideEmitWithAck(_ packet: [SocketIOValue]) async throws -> [SocketIOValue] {
        try await request(.serverSideEmit, data: ["packet": .array(packet)], timeout: .seconds(5)) { .values([], $0) }
    }

    /// The selected sockets of every live peer: waits for each peer's answer, up to the options'
    /// timeout (5 s by default, as the reference), then throws naming how many answered.
    func fetchSockets(_ options: SocketIOBroadcastOptions) async throws -> [SocketIORemoteSocket] {
        try await request(.fetchSockets, data: ["opts": Self.options(options)], timeout: options.timeout ?? .seconds(5)) { .sockets([], $0) }
    }

    /// Publishes a request with a new `requestId` in `data` and waits for one answer from each
    /// live peer, up to `timeout`.
    private func request<Answer: Sendable>(
        _ type: SocketIOClusterMessageType, data: SocketIOObject, timeout: Duration,
        answers: (CheckedContinuation<[Answer], any Error>) -> Request.Answers
    ) async throws -> [Answer] {
        let expected = peers.count
        guard expected > 0 else { return [] }
        let id = Self.requestID()
        var data = data
        data["requestId"] = .string(id)
        return try await withCheckedThrowingContinuation { continuation in
            state.withLock { $0.requests[id] = Request(expected: expected, answers: answers(continuation)) }
            cluster.send(type, namespace: namespace, data: .object(data))
            Task { [self] in
                try? await Task.sleep(for: timeout)
                state.withLock { $0.requests.removeValue(forKey: id) }?.timeOut()
            }
        }
    }

    private static func requestID() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(generator.next(), radix: 16)
    }

    func addSockets(_ options: SocketIOBroadcastOptions, rooms: Set<String>) {
        cluster.send(.socketsJoin, namespace: namespace, data: ["opts": Self.options(options), "rooms": .array(rooms.sorted().map { .string($0) })])
    }

    func delSockets(_ options: SocketIOBroadcastOptions, rooms: Set<String>) {
        cluster.send(.socketsLeave, namespace: namespace, data: ["opts": Self.options(options), "rooms": .array(rooms.sorted().map { .string($0) })])
    }

    func disconnectSockets(_ options: SocketIOBroadcastOptions, close: Bool) {
        cluster.send(.disconnectSockets, namespace: namespace, data: ["opts": Self.options(options), "close": .bool(close)])
    }

    // MARK: From the other nodes

    /// Applies a message of another node (or of an emitter); returns whether it asks for a
    /// heartbeat in answer (INITIAL_HEARTBEAT).
    func receive(_ message: SocketIOClusterMessage) -> Bool {
        notePeer(message)
        let data = message.data
        switch message.type {
        case .initialHeartbeat:
            return true
        case .broadcast where data?["requestId"] != nil:
            guard let id = data?["requestId"]?.stringValue, let packet = data?["packet"], packet["data"]?.arrayValue != nil,
                let options = data?["opts"].flatMap(Self.options(from:))
            else { return false }
            // The count goes out before any answer, as the reference's: a fast client's answer
            // waits for it.
            let relay = AckRelay { [self] type, data in cluster.send(type, namespace: namespace, data: data) }
            sockets.broadcastWithAck(
                packet["data"]!, options: options,
                clientCount: { count in relay.count(["requestId": .string(id), "clientCount": .number(Double(count))]) },
                respond: { arguments in relay.answer(["requestId": .string(id), "packet": arguments.first ?? .null]) })
        case .broadcast:
            guard let packet = data?["packet"], let options = data?["opts"].flatMap(Self.options(from:)),
                let outbound = Self.outbound(packet, namespace: namespace, parser: sockets.parser, isVolatile: options.isVolatile)
            else {
                cluster.logger.warning("Ignored a cluster broadcast that could not be read", metadata: ["from": "\(message.uid)"])
                return false
            }
            sockets.broadcastFromPeer(outbound, options: options)
        case .socketsJoin, .socketsLeave:
            guard let options = data?["opts"].flatMap(Self.options(from:)), let rooms = data?["rooms"]?.arrayValue?.compactMap(\.stringValue)
            else { return false }
            if message.type == .socketsJoin {
                sockets.addSockets(options, rooms: Set(rooms))
            } else {
                sockets.delSockets(options, rooms: Set(rooms))
            }
        case .disconnectSockets:
            guard let options = data?["opts"].flatMap(Self.options(from:)) else { return false }
            sockets.disconnectSockets(options, close: data?["close"]?.boolValue ?? false)
        case .fetchSockets:
            guard let options = data?["opts"].flatMap(Self.options(from:)), let id = data?["requestId"]?.stringValue else { return false }
            Task { [self] in
                let local = await sockets.fetchSockets(options)
                cluster.send(
                    .fetchSocketsResponse, namespace: namespace, data: ["requestId": .string(id), "sockets": .array(local.map(\.clusterValue))])
            }
        case .fetchSocketsResponse, .serverSideEmitResponse:
            guard let id = data?["requestId"]?.stringValue else { return false }
            let finished = state.withLock { state -> Request? in
                // Answers to other nodes' requests go past: they are not in this table.
                guard var request = state.requests[id] else { return nil }
                request.add(data)
                guard request.received >= request.expected else {
                    state.requests[id] = request
                    return nil
                }
                state.requests[id] = nil
                return request
            }
            finished?.finish()
        case .serverSideEmit:
            guard let packet = data?["packet"]?.arrayValue else { return false }
            let id = data?["requestId"]?.stringValue
            Task { [self] in
                guard let answer = await sockets.serverSideEvents.receive(packet), let id else { return }
                cluster.send(.serverSideEmitResponse, namespace: namespace, data: ["requestId": .string(id), "packet": answer])
            }
        case .broadcastClientCount:
            guard let id = data?["requestId"]?.stringValue, let count = data?["clientCount"]?.intValue else { return false }
            state.withLock { $0.ackRequests[id] }?.expect(count)
        case .broadcastAck:
            guard let id = data?["requestId"]?.stringValue else { return false }
            state.withLock { $0.ackRequests[id] }?.respond([data?["packet"] ?? .null])
        default:
            break
        }
        return false
    }

    /// Counts a message of a peer as a sign of life (an ADAPTER_CLOSE as its goodbye).
    func notePeer(_ message: SocketIOClusterMessage) {
        guard message.uid != SocketIOClusterMessage.emitterUID else { return }
        state.withLock { state in
            if message.type == .adapterClose {
                state.peers[message.uid] = nil
            } else {
                state.peers[message.uid] = .now
            }
        }
    }

    /// The event of a sequenced BROADCAST's packet, its offset as its last argument.
    static func sequencedEvent(
        _ packet: SocketIOValue, namespace: String, parser: SocketIOParser, offset: UInt64, message: SocketIOClusterMessage
    ) -> SocketIOStoredEvent? {
        guard let type = packet["type"]?.intValue, type == 2 || type == 5, let data = packet["data"]?.arrayValue,
            let options = message.data?["opts"].flatMap(Self.options(from:))
        else { return nil }
        let outbound = SocketIOOutboundPacket(
            SocketIOPacket(type: .event, namespace: namespace, data: .array(data + [.string(String(offset))])), parser: parser)
        return SocketIOStoredEvent(
            namespace: namespace, offset: offset, rooms: options.rooms, except: options.except,
            payloads: outbound.frames.compactMap { $0.packet.payload }, emittedAt: Date(), messageID: nil)
    }

    // MARK: The protocol's shapes

    /// `{rooms, except, flags}` as the reference encodes broadcast options.
    static func options(_ options: SocketIOBroadcastOptions) -> SocketIOValue {
        var flags = SocketIOObject()
        if options.isVolatile { flags["volatile"] = true }
        if let timeout = options.timeout {
            flags["timeout"] = .number(Double(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        }
        return [
            "rooms": .array(options.rooms.sorted().map { .string($0) }), "except": .array(options.except.sorted().map { .string($0) }),
            "flags": .object(flags),
        ]
    }

    static func options(from value: SocketIOValue) -> SocketIOBroadcastOptions? {
        guard let rooms = value["rooms"]?.arrayValue, let except = value["except"]?.arrayValue else { return nil }
        var options = SocketIOBroadcastOptions()
        options.rooms = Set(rooms.compactMap(\.stringValue))
        options.except = Set(except.compactMap(\.stringValue))
        options.isVolatile = value["flags"]?["volatile"]?.boolValue == true
        if let milliseconds = value["flags"]?["timeout"]?.numberValue { options.timeout = .milliseconds(Int64(milliseconds)) }
        return options
    }

    /// The packet as the reference puts it in a BROADCAST: `{type, data}` (no namespace; an `id`
    /// for acks).
    static func packetValue(_ outbound: SocketIOOutboundPacket) -> SocketIOValue? {
        let packet: SocketIOPacket
        if let built = outbound.packet {
            packet = built
        } else if let first = outbound.frames.first?.packet.payload,
            let decoded = try? (first.isBinary ? SocketIOParser.msgpack : .json).decode(outbound.frames.compactMap { $0.packet.payload })
        {
            packet = decoded
        } else {
            return nil
        }
        var value: SocketIOObject = ["type": .number(Double(packet.data?.containsBinary == true ? 2 : packet.type.rawValue))]
        if let data = packet.data { value["data"] = data }
        if let id = packet.id { value["id"] = .number(Double(id)) }
        return .object(value)
    }

    /// The packet of another node's BROADCAST, encoded for this server's sockets.
    static func outbound(_ value: SocketIOValue, namespace: String, parser: SocketIOParser, isVolatile: Bool) -> SocketIOOutboundPacket? {
        guard let type = value["type"]?.intValue, type == 2 || type == 5, let data = value["data"], data.arrayValue != nil else { return nil }
        return SocketIOOutboundPacket(SocketIOPacket(type: .event, namespace: namespace, data: data), parser: parser, isVolatile: isVolatile)
    }
}

/// Resumes a continuation with the first result it is given.
private final class FirstOutcome<Value: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<Value, any Error>?>(nil)

    func start(_ continuation: CheckedContinuation<Value, any Error>) { self.continuation.withLock { $0 = continuation } }

    func finish(_ result: Result<Value, any Error>) {
        continuation.withLock { continuation in
            continuation?.resume(with: result)
            continuation = nil
        }
    }
}

/// Sends a remote broadcast's BROADCAST_CLIENT_COUNT, then its BROADCAST_ACKs: answers that come
/// before the count (its sockets are counted once every loop wrote the packet) wait for it.
private final class AckRelay: Sendable {
    private let send: @Sendable (SocketIOClusterMessageType, SocketIOValue) -> Void
    /// The answers waiting for the count; `nil` once it was sent.
    private let waiting = Mutex<[SocketIOValue]?>([])

    init(send: @escaping @Sendable (SocketIOClusterMessageType, SocketIOValue) -> Void) { self.send = send }

    func count(_ data: SocketIOValue) {
        // Sent under the lock, so that no answer overtakes the count or the answers before it.
        waiting.withLock { waiting in
            send(.broadcastClientCount, data)
            for answer in waiting ?? [] { send(.broadcastAck, answer) }
            waiting = nil
        }
    }

    func answer(_ data: SocketIOValue) {
        waiting.withLock { waiting in
            if waiting == nil { send(.broadcastAck, data) } else { waiting!.append(data) }
        }
    }
}
