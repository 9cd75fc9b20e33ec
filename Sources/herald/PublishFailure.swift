import AsyncHTTPClient
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a publish request did not reach herald, in a few words.
enum PublishFailure {
    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as IOError:
            return String(cString: strerror(error.errnoCode))
        case let error as NIOConnectionError:
            return error.connectionErrors.first.map { reason($0.error) } ?? "cannot connect"
        case let error as HTTPClientError where error == .connectTimeout:
            return "the connection timed out"
        case let error as HTTPClientError where error == .deadlineExceeded:
            return "no answer within 10 s"
        case let error as HTTPClientError where error == .remoteConnectionClosed:
            return "herald closed the connection"
        default:
            return String(describing: error)
        }
    }
}
