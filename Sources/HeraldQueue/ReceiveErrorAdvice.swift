import Logging
import SQS

/// How a receive error is explained to an operator, at which level, and whether to keep retrying.
struct ReceiveErrorAdvice {
    /// One line saying what went wrong and what to check.
    var operatorMessage: String
    /// The log level.
    var level: Logger.Level
    /// Whether retrying may help (false for a missing queue or refused credentials at start).
    var isRetryable: Bool

    init(_ error: any Error) {
        guard let error = error as? SQSError else {
            operatorMessage = "\(error)"
            level = .warning
            isRetryable = true
            return
        }
        if error.isThrottling {
            operatorMessage = "SQS is throttling our requests; backing off (\(error))"
            level = .warning
            isRetryable = true
        } else if error.isCredentialsError {
            operatorMessage = "SQS refused the credentials; check the access key, secret and session token (\(error))"
            level = .error
            isRetryable = error.kind == .credentials
        } else if error.isAccessDenied {
            operatorMessage = "SQS denied access; the IAM or queue policy must allow this action (\(error))"
            level = .error
            isRetryable = false
        } else if error.isQueueDoesNotExist {
            operatorMessage = "the queue does not exist; check its URL, account and region (\(error))"
            level = .error
            isRetryable = false
        } else if error.kind == .timeout || error.kind == .transport {
            operatorMessage = "SQS cannot be reached; check the endpoint and the network (\(error))"
            level = .warning
            isRetryable = true
        } else {
            operatorMessage = "\(error)"
            level = error.isRetryable ? .warning : .error
            isRetryable = error.isRetryable
        }
    }
}
