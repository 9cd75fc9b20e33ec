import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one-line messages of start-up steps that failed outside the settings themselves.
enum StartupFailure {
    /// The HTTP server could not listen on `host:port`: the cause, and what to change.
    static func listen(host: String, port: Int, error: any Error) -> HeraldSettings.Problem {
        let cause: String
        switch error {
        case let error as IOError:
            let reason = String(cString: strerror(error.errnoCode)).lowercasedFirst
            switch error.errnoCode {
            case EADDRINUSE: cause = "\(reason); choose another --port"
            case EACCES: cause = "\(reason); ports below 1024 need privileges, choose another --port"
            case EADDRNOTAVAIL: cause = "\(reason); --host must be an address of this machine"
            default: cause = reason
            }
        case is SocketAddressError:
            cause = "the host is not an address herald can resolve; check --host"
        default:
            cause = "\(error)"
        }
        return HeraldSettings.Problem(description: "cannot listen on \(host):\(port): \(cause)")
    }
}

extension String {
    /// The string with its first letter in lower case ("Address already in use" → "address…").
    fileprivate var lowercasedFirst: String { prefix(1).lowercased() + dropFirst() }
}
