import Metrics

/// The upstream forwarder's counters, named `herald_upstream_…` with a `target` dimension
/// (`webhook` or `queue`) where one applies.
struct UpstreamMetrics: Sendable {
    /// Where a forward goes.
    enum Target: String, Sendable {
        case webhook, queue
    }

    private struct PerTarget: Sendable {
        let forwards: Counter
        let failures: Counter
        let retries: Counter
    }

    /// Events refused because the most forwards were in flight.
    let refused: Counter
    private let webhook: PerTarget
    private let queue: PerTarget

    init(factory: any MetricsFactory) {
        func perTarget(_ target: Target) -> PerTarget {
            let dimensions = [("target", target.rawValue)]
            return PerTarget(
                forwards: Counter(label: "herald_upstream_forwards_total", dimensions: dimensions, factory: factory),
                failures: Counter(label: "herald_upstream_failures_total", dimensions: dimensions, factory: factory),
                retries: Counter(label: "herald_upstream_retries_total", dimensions: dimensions, factory: factory)
            )
        }
        refused = Counter(label: "herald_upstream_refused_total", factory: factory)
        webhook = perTarget(.webhook)
        queue = perTarget(.queue)
    }

    private func counters(_ target: Target) -> PerTarget { target == .webhook ? webhook : queue }

    /// Events sent to `target` (once each, whatever the attempts).
    func forwards(_ target: Target) -> Counter { counters(target).forwards }
    /// Forwards to `target` that failed for good.
    func failures(_ target: Target) -> Counter { counters(target).failures }
    /// Attempts after the first.
    func retries(_ target: Target) -> Counter { counters(target).retries }
}
