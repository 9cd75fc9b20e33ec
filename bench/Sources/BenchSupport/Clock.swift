#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Microseconds on CLOCK_MONOTONIC. The clock is system-wide on Linux, so a publisher in one
/// process and receivers in other processes on the same machine compare the same timeline.
@inline(__always)
public func monotonicMicros() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000 &+ UInt64(ts.tv_nsec) / 1_000
}

/// Seconds as a Double, for reporting elapsed times.
public func monotonicSeconds() -> Double {
    Double(monotonicMicros()) / 1_000_000
}
