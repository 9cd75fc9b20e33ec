/// A log-linear histogram of non-negative integers (microseconds here), in the spirit of
/// HdrHistogram: values below 128 are exact, above that each power of two is split into 64
/// buckets (relative error below 1.6 %). Recording is one index computation and one increment,
/// no allocation. Not thread-safe: one instance per event loop, merged at the end.
public struct Histogram: Sendable {
    public static let bucketCount = 64 * 60
    public private(set) var counts: [UInt64]
    public private(set) var total: UInt64 = 0
    public private(set) var maxValue: UInt64 = 0
    public private(set) var minValue: UInt64 = .max
    public private(set) var sum: Double = 0

    public init() {
        self.counts = [UInt64](repeating: 0, count: Self.bucketCount)
    }

    @inline(__always)
    public static func index(of value: UInt64) -> Int {
        if value < 128 { return Int(value) }
        let msb = 63 - value.leadingZeroBitCount
        let shift = msb - 6
        let top = Int(value >> UInt64(shift))  // 64...127
        return shift * 64 + top
    }

    /// The lowest value that falls into bucket `index`.
    public static func lowerBound(of index: Int) -> UInt64 {
        if index < 128 { return UInt64(index) }
        let shift = index / 64 - 1
        let top = UInt64(index % 64 + 64)
        return top << UInt64(shift)
    }

    /// A representative value for bucket `index` (its middle).
    public static func midpoint(of index: Int) -> UInt64 {
        if index < 128 { return UInt64(index) }
        let shift = index / 64 - 1
        return lowerBound(of: index) + (UInt64(1) << UInt64(shift)) / 2
    }

    @inline(__always)
    public mutating func record(_ value: UInt64) {
        let i = Swift.min(Self.index(of: value), Self.bucketCount - 1)
        counts[i] &+= 1
        total &+= 1
        sum += Double(value)
        if value > maxValue { maxValue = value }
        if value < minValue { minValue = value }
    }

    public mutating func merge(_ other: Histogram) {
        for i in 0..<Self.bucketCount where other.counts[i] != 0 {
            counts[i] &+= other.counts[i]
        }
        total &+= other.total
        sum += other.sum
        maxValue = Swift.max(maxValue, other.maxValue)
        minValue = Swift.min(minValue, other.minValue)
    }

    /// Value at quantile q (0...1); the exact maximum for q == 1; 0 when empty.
    public func value(atQuantile q: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        if q >= 1 { return maxValue }
        let rank = UInt64((q * Double(total)).rounded(.up))
        var seen: UInt64 = 0
        for i in 0..<Self.bucketCount {
            seen &+= counts[i]
            if seen >= Swift.max(rank, 1) {
                return Swift.min(Self.midpoint(of: i), maxValue)
            }
        }
        return maxValue
    }

    public var mean: Double { total == 0 ? 0 : sum / Double(total) }

    /// Sparse text form "index:count,index:count;total;sum;min;max" for passing between processes.
    public func serialized() -> String {
        var parts: [String] = []
        for i in 0..<Self.bucketCount where counts[i] != 0 {
            parts.append("\(i):\(counts[i])")
        }
        return parts.joined(separator: ",") + ";\(total);\(sum);\(minValue);\(maxValue)"
    }

    public init?(serialized text: Substring) {
        self.init()
        let fields = text.split(separator: ";", omittingEmptySubsequences: false)
        guard fields.count == 5,
            let total = UInt64(fields[1]), let sum = Double(fields[2]),
            let minV = UInt64(fields[3]), let maxV = UInt64(fields[4])
        else { return nil }
        for pair in fields[0].split(separator: ",") {
            let kv = pair.split(separator: ":")
            guard kv.count == 2, let i = Int(kv[0]), let c = UInt64(kv[1]), i < Self.bucketCount else { return nil }
            counts[i] = c
        }
        self.total = total
        self.sum = sum
        self.minValue = minV
        self.maxValue = maxV
    }
}
