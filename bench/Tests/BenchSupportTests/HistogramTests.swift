import BenchSupport
import Testing

@Test func histogramIndexIsMonotonicAndClose() {
    var last = -1
    for v in stride(from: UInt64(0), to: 5_000_000, by: 7) {
        let i = Histogram.index(of: v)
        #expect(i >= last)
        last = i
        let lo = Histogram.lowerBound(of: i)
        #expect(lo <= v)
        #expect(Double(v - lo) <= Double(v) / 60 + 1)
    }
}

@Test func histogramQuantiles() {
    var h = Histogram()
    for v in 1...10_000 { h.record(UInt64(v)) }
    let p50 = Double(h.value(atQuantile: 0.5))
    let p99 = Double(h.value(atQuantile: 0.99))
    #expect(abs(p50 - 5000) / 5000 < 0.02)
    #expect(abs(p99 - 9900) / 9900 < 0.02)
    #expect(h.value(atQuantile: 1) == 10_000)
    let copy = Histogram(serialized: Substring(h.serialized()))
    #expect(copy?.total == h.total)
    #expect(copy?.value(atQuantile: 0.99) == h.value(atQuantile: 0.99))
}
