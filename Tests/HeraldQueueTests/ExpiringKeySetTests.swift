import HeraldQueue
import Testing

@Suite("Keys remembered for a window, within a capacity")
struct ExpiringKeySetTests {
    @Test("a key is forgotten once older than the window")
    func window() {
        let start = ContinuousClock.now
        var keys = ExpiringKeySet(window: .seconds(10))
        keys.insert("a", at: start)
        keys.insert("b", at: start + .seconds(5))
        keys.evict(now: start + .seconds(9))
        #expect(keys.contains("a") && keys.contains("b"))
        keys.evict(now: start + .seconds(11))
        #expect(!keys.contains("a") && keys.contains("b"))
        keys.evict(now: start + .seconds(16))
        #expect(keys.count == 0)
    }

    @Test("past the capacity the oldest keys go first")
    func capacity() {
        let now = ContinuousClock.now
        var keys = ExpiringKeySet(window: .seconds(60), capacity: 2)
        for key in ["a", "b", "c"] { keys.insert(key, at: now) }
        keys.evict(now: now)
        #expect(!keys.contains("a") && keys.contains("b") && keys.contains("c"))
    }

    @Test("a key inserted again lives from its newest insertion; a removed key is gone")
    func reinsertAndRemove() {
        let start = ContinuousClock.now
        var keys = ExpiringKeySet(window: .seconds(10))
        keys.insert("a", at: start)
        keys.insert("a", at: start + .seconds(8))
        keys.evict(now: start + .seconds(12))
        #expect(keys.contains("a"))
        keys.remove("a")
        #expect(!keys.contains("a"))
    }
}
