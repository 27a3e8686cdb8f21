import Foundation
import Synchronization
import XCTest
@testable import Tensor

final class ThreadPoolTests: XCTestCase {
    /// Every index runs exactly once per call, on a thread index in range, across many calls.
    func testEveryIndexExactlyOnce() {
        for threads in [1, 2, 3, 4] {
            let pool = ThreadPool(threads: threads)
            XCTAssertEqual(pool.threadCount, threads)
            for count in [0, 1, 2, 3, 7, 64, 1000] {
                // One slot per index: correct code never has two threads on one slot.
                let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
                let threadOf = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
                defer { hits.deallocate(); threadOf.deallocate() }
                for call in 0..<40 {
                    hits.initialize(repeating: 0)
                    threadOf.initialize(repeating: -1)
                    pool.parallelFor(count) { i, t in
                        hits[i] += 1
                        threadOf[i] = t
                    }
                    for i in 0..<count where hits[i] != 1 || !(0..<threads).contains(threadOf[i]) {
                        XCTFail("threads=\(threads) count=\(count) call=\(call): index \(i) ran \(hits[i]) times, thread \(threadOf[i])")
                        break
                    }
                }
            }
        }
    }

    func testSingleArgumentOverloadAndResults() {
        let pool = ThreadPool(threads: 3)
        let n = 10_000
        var out = [Double](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { o in
            pool.parallelFor(n) { i in o[i] = Double(i) * 0.5 }
        }
        XCTAssertEqual(out, (0..<n).map { Double($0) * 0.5 })
        // Many short jobs back to back, counted atomically.
        let total = Atomic<Int>(0)
        for _ in 0..<500 { pool.parallelFor(5) { i in total.add(i + 1, ordering: .relaxed) } }
        XCTAssertEqual(total.load(ordering: .relaxed), 500 * 15)
    }

    func testThreadCountIsAtLeastOne() {
        XCTAssertEqual(ThreadPool(threads: 0).threadCount, 1)
        XCTAssertEqual(ThreadPool(threads: -3).threadCount, 1)
        var ran = 0
        ThreadPool(threads: 0).parallelFor(3) { _, t in XCTAssertEqual(t, 0); ran += 1 }
        XCTAssertEqual(ran, 3)
    }

    /// With slow items, the workers take part (the caller does not do everything alone).
    func testWorkersShareTheWork() {
        let pool = ThreadPool(threads: 2)
        var sawWorker = false
        for _ in 0..<5 where !sawWorker {
            let used = Mutex<Set<Int>>([])
            pool.parallelFor(200) { _, t in
                usleep(200)
                used.withLock { _ = $0.insert(t) }
            }
            sawWorker = used.withLock { $0.contains(1) }
        }
        XCTAssertTrue(sawWorker, "no item ran on the worker thread")
    }

    /// Dropping a pool stops and joins its threads (the workers must not keep it alive), even
    /// when it is dropped before its threads have started.
    func testDroppedPoolsReleaseTheirThreads() throws {
        weak var weakPool: ThreadPool?
        do {
            let pool = ThreadPool(threads: 3)
            pool.parallelFor(10) { _ in }
            weakPool = pool
        }
        XCTAssertNil(weakPool, "the pool outlived its last reference")

        let tasks = "/proc/self/task"
        let before = try? FileManager.default.contentsOfDirectory(atPath: tasks).count
        for i in 0..<100 {
            let pool = ThreadPool(threads: 4)  // dropped at once, often before its threads run
            if i % 2 == 0 { pool.parallelFor(8) { _ in } }
        }
        if let before, let after = try? FileManager.default.contentsOfDirectory(atPath: tasks).count {
            XCTAssertLessThanOrEqual(after, before, "threads leaked: \(before) before, \(after) after")
        }
    }
}
