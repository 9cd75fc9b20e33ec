import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive, non-blocking `flock` on `<queue file>.lock`, held while an ``EmbeddedQueue``
/// opened with ``EmbeddedQueue/Configuration/exclusive`` is open.
///
/// The lock is on a file beside the database rather than on the database itself: SQLite keeps
/// POSIX record locks on the database, and closing any other descriptor of that file would drop
/// them. The kernel releases the lock when the process ends, however it ends, so a crashed
/// process never leaves a stale lock behind.
final class EmbeddedQueueLock: Sendable {
    /// The lock file.
    let path: String
    private let descriptor: Mutex<Int32?>

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = Mutex(descriptor)
    }

    /// Takes the lock of the queue at `queuePath`, or fails at once when another holder has it.
    static func acquire(queuePath: String) throws(EmbeddedQueueLockError) -> EmbeddedQueueLock {
        let path = queuePath + ".lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(descriptor)
            if code == EWOULDBLOCK { throw .held(queuePath: queuePath) }
            throw .cannotOpen(path: path, reason: String(cString: strerror(code)))
        }
        return EmbeddedQueueLock(path: path, descriptor: descriptor)
    }

    /// Releases the lock (closing its descriptor); calling it again does nothing.
    func release() {
        guard
            let descriptor = descriptor.withLock({ value in
                defer { value = nil }
                return value
            })
        else { return }
        close(descriptor)
    }

    deinit { release() }
}

/// Why an ``EmbeddedQueue`` opened with ``EmbeddedQueue/Configuration/exclusive`` could not take
/// its lock.
public enum EmbeddedQueueLockError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Another process (or another open queue of this one) holds the lock of the queue file.
    case held(queuePath: String)
    /// The lock file could not be created or locked.
    case cannotOpen(path: String, reason: String)

    /// A sentence for logs.
    public var description: String {
        switch self {
        case .held(let queuePath): "\(queuePath) is open in another process that holds its lock"
        case .cannotOpen(let path, let reason): "cannot lock \(path): \(reason)"
        }
    }
}
