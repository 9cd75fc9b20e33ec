import EngineIO
import Foundation
import NIOCore
import SocketIO
import Synchronization

/// Ends a client's socket at the `exp` of the token it connected with, so that a client whose
/// token ran out stops receiving.
///
/// One timer per socket, on its connection's event loop, cancelled when the socket leaves.
/// At `exp` the client receives a `CONNECT_ERROR` packet `{"message": "token expired"}` for the
/// socket's namespace — the same refusal a handshake with an expired token gets — and the
/// socket leaves its rooms; when it was the connection's last socket the connection is closed
/// too. What the official clients show:
/// - `socket.io-client` (JavaScript) emits `connect_error` with an `Error` whose `message` is
///   `"token expired"` and does not reconnect by itself. Its `socket.connected` stays `true`
///   (the client does not emit `disconnect` after a `CONNECT_ERROR`), so reconnect with a fresh
///   token by `socket.auth = { token }; socket.disconnect().connect()`.
/// - `python-socketio` calls the namespace's `connect_error` handler with
///   `{"message": "token expired"}` and marks itself disconnected; the connection then closes.
///   With `reconnection` on it reconnects, and its next handshake is answered by the same
///   refusal unless its `auth` (a callable) now gives a fresh token.
final class TokenExpiry: Sendable {
    /// The message of the `CONNECT_ERROR` a client receives when its token expires.
    static let message = "token expired"
    private static let longestDelay = Double(Int64.max / 1_000_000_000 - 1)

    /// The ids of the gateway's sockets on each Engine.IO connection (by session id), so that
    /// the connection closes with its last socket.
    private let sockets = Mutex<[String: Set<String>]>([:])

    /// Follows a socket until it leaves: with `expiresAt`, ends it then.
    func watch(_ socket: SocketIOSocket, expiresAt: Date?) {
        let connection = socket.connection
        sockets.withLock { _ = $0[connection.id, default: []].insert(socket.id) }
        let timer = expiresAt.map { expiresAt in
            // Clamped to what a TimeAmount holds (292 years), so that no `exp` can trap.
            let delay = min(max(0, expiresAt.timeIntervalSinceNow), Self.longestDelay)
            return connection.eventLoop.scheduleTask(in: .nanoseconds(Int64(delay * 1_000_000_000))) { [self] in
                expire(socket)
            }
        }
        socket.onDisconnect { [self] socket, _ in
            timer?.cancel()
            forget(socket)
        }
        // A socket that left while this ran never calls the handler registered above.
        if !socket.isConnected {
            timer?.cancel()
            forget(socket)
        }
    }

    private func expire(_ socket: SocketIOSocket) {
        guard socket.isConnected else { return }
        let isLast = forget(socket)
        let refusal = SocketIOPacket(type: .connectError, namespace: socket.namespace.name, data: ["message": .string(Self.message)])
        socket.connection.send(SocketIOOutboundPacket(refusal, parser: socket.namespace.localSockets.parser).frames)
        if isLast {
            // A server close lets the client read what was queued before it (the refusal).
            socket.connection.close(reason: .forcedClose)
        } else {
            socket.leaveAll()
            socket.disconnect()
        }
    }

    /// Forgets a socket; returns whether its connection has no other socket left.
    @discardableResult
    private func forget(_ socket: SocketIOSocket) -> Bool {
        sockets.withLock { sockets in
            let id = socket.connection.id
            sockets[id]?.remove(socket.id)
            guard sockets[id]?.isEmpty ?? true else { return false }
            sockets[id] = nil
            return true
        }
    }
}
