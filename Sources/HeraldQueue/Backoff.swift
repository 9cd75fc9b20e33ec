/// An exponential backoff: `base × 2^(attempt − 1)`, capped at `max`, optionally with jitter.
public struct Backoff: Sendable, Hashable {
    /// The delay after the first attempt.
    public var base: Duration
    /// The longest delay.
    public var max: Duration

    /// Creates a backoff.
    public init(base: Duration, max: Duration) {
        self.base = base
        self.max = max
    }

    /// The delay before attempt `attempt + 1`, without jitter (`attempt` counts from 1).
    public func delay(attempt: Int) -> Duration {
        let exponent = Swift.min(Swift.max(attempt - 1, 0), 30)
        let seconds = base.seconds * Double(1 << exponent)
        return Swift.min(.seconds(seconds), max)
    }

    /// The delay with "equal jitter": half of ``delay(attempt:)`` plus a random part up to the other half.
    public func jitteredDelay(attempt: Int) -> Duration {
        let full = delay(attempt: attempt).seconds
        return .seconds(full / 2 + Double.random(in: 0...(full / 2)))
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// Whole seconds, rounded up, as SQS visibility timeouts take them.
    var wholeSecondsRoundedUp: Int {
        Int(seconds.rounded(.up))
    }
}
