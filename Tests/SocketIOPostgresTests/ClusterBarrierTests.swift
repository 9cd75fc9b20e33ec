import Testing

@testable import SocketIOPostgres

@Suite("Cluster barriers: a wait ends when this node's marker comes back")
struct ClusterBarrierTests {
    @Test("waits made while a marker is uncommitted share it; once it is committed, the next wait needs a new one")
    func sharing() {
        let barrier = ClusterBarrier()
        #expect(barrier.marker(for: "/") == (1, true))
        #expect(barrier.marker(for: "/") == (1, false))
        #expect(barrier.marker(for: "/chat") == (2, true), "each channel has markers of its own")
        barrier.committed(1, namespace: "/")
        #expect(barrier.marker(for: "/") == (3, true))
        barrier.committed(1, namespace: "/")
        #expect(barrier.marker(for: "/") == (3, false), "an older marker's commit does not end the newer one's sharing")
    }

    @Test("a wait ends when its marker or a later one of its channel arrives, also when it arrived before the wait began")
    func arrivals() async {
        let barrier = ClusterBarrier()
        async let first = barrier.wait(for: 1, namespace: "/", timeout: .seconds(30))
        async let second = barrier.wait(for: 2, namespace: "/", timeout: .seconds(30))
        async let other = barrier.wait(for: 3, namespace: "/chat", timeout: .milliseconds(100))
        barrier.arrived(2, namespace: "/")
        #expect(await first)
        #expect(await second)
        #expect(await other == false, "a marker of another channel ends nothing")
        #expect(await barrier.wait(for: 2, namespace: "/", timeout: .seconds(30)), "arrived before the wait")
    }

    @Test("a marker that never arrives ends its wait after the timeout")
    func timeout() async {
        let barrier = ClusterBarrier()
        #expect(await barrier.wait(for: 1, namespace: "/", timeout: .milliseconds(50)) == false)
    }
}
