import XCTest
@testable import Engine

final class SchedulerTests: XCTestCase {
    private let a = RequestID(rawValue: 1), b = RequestID(rawValue: 2), c = RequestID(rawValue: 3)

    private func prefill(_ id: RequestID, _ r: Range<Int>, samples: Bool) -> Scheduler.Item {
        Scheduler.Item(id: id, work: .prefill(r), samples: samples)
    }

    private func decode(_ id: RequestID) -> Scheduler.Item { Scheduler.Item(id: id, work: .decode, samples: true) }

    func testDecodeFirstThenPrefillChunksWithinBudgetAndRunLimit() {
        var s = Scheduler(tokenBudget: 8, maxRunning: 2)
        s.enqueue(a, promptLength: 5)
        s.enqueue(b, promptLength: 6)
        s.enqueue(c, promptLength: 3)

        let p1 = s.nextStep()
        XCTAssertEqual(p1.items, [prefill(a, 0..<5, samples: true), prefill(b, 0..<3, samples: false)])
        XCTAssertEqual(p1.admitted, [a, b])
        XCTAssertEqual(p1.tokenCount, 8)
        XCTAssertEqual(s.waitingIDs, [c])

        let p2 = s.nextStep()  // c waits: two are running
        XCTAssertEqual(p2.items, [decode(a), prefill(b, 3..<6, samples: true)])
        XCTAssertEqual(p2.admitted, [])

        let p3 = s.nextStep()
        XCTAssertEqual(p3.items, [decode(a), decode(b)])

        XCTAssertTrue(s.remove(a))
        let p4 = s.nextStep()
        XCTAssertEqual(p4.items, [decode(b), prefill(c, 0..<3, samples: true)])
        XCTAssertEqual(p4.admitted, [c])
        XCTAssertEqual(s.runningIDs, [b, c])
    }

    /// Tokens whose keys and values are cached (a reused prompt prefix) are never planned.
    func testCachedPromptTokensAreSkipped() {
        var s = Scheduler(tokenBudget: 8, maxRunning: 4)
        s.enqueue(a, promptLength: 30)
        s.enqueue(b, promptLength: 5)
        var asked: [RequestID] = []
        let cached = { (id: RequestID) -> Int in asked.append(id); return id == self.a ? 20 : 4 }
        XCTAssertEqual(s.nextStep(cachedPrompt: cached).items, [prefill(a, 20..<28, samples: false)])
        XCTAssertEqual(asked, [a], "asked only on admission")
        XCTAssertEqual(s.nextStep(cachedPrompt: cached).items, [prefill(a, 28..<30, samples: true), prefill(b, 4..<5, samples: true)])
        XCTAssertEqual(asked, [a, b])
        XCTAssertEqual(s.nextStep(cachedPrompt: cached).items, [decode(a), decode(b)])
        XCTAssertEqual(asked, [a, b])
    }

    func testLongPromptIsChunkedAndOnlyTheLastChunkSamples() {
        var s = Scheduler(tokenBudget: 4, maxRunning: 4)
        s.enqueue(a, promptLength: 10)
        XCTAssertEqual(s.nextStep().items, [prefill(a, 0..<4, samples: false)])
        XCTAssertEqual(s.nextStep().items, [prefill(a, 4..<8, samples: false)])
        XCTAssertEqual(s.nextStep().items, [prefill(a, 8..<10, samples: true)])
        XCTAssertEqual(s.nextStep().items, [decode(a)])
    }

    func testDecodingSequencesAreNeverStarvedByAPrefill() {
        var s = Scheduler(tokenBudget: 4, maxRunning: 3)
        s.enqueue(a, promptLength: 1)
        s.enqueue(b, promptLength: 1)
        _ = s.nextStep()
        s.enqueue(c, promptLength: 100)
        for step in 0..<5 {
            let p = s.nextStep()
            XCTAssertEqual(Array(p.items.prefix(2)), [decode(a), decode(b)], "step \(step)")
            XCTAssertEqual(p.items.last, prefill(c, 2 * step..<2 * step + 2, samples: false))
            XCTAssertLessThanOrEqual(p.tokenCount, 4)
        }
    }

    func testRemovingWaitingAndUnknownRequests() {
        var s = Scheduler(tokenBudget: 4, maxRunning: 1)
        s.enqueue(a, promptLength: 2)
        s.enqueue(b, promptLength: 2)
        s.enqueue(c, promptLength: 2)
        XCTAssertTrue(s.remove(b))
        XCTAssertFalse(s.remove(b))
        XCTAssertEqual(s.waitingIDs, [a, c])
        _ = s.nextStep()
        XCTAssertEqual(s.runningIDs, [a])
        XCTAssertTrue(s.remove(a))
        XCTAssertEqual(s.nextStep().items, [prefill(c, 0..<2, samples: true)])
        XCTAssertTrue(s.remove(c))
        XCTAssertTrue(s.isIdle)
        XCTAssertTrue(s.nextStep().isEmpty)
    }

    func testPrefillOfSeveralNewRequestsSharesOneStep() {
        var s = Scheduler(tokenBudget: 512, maxRunning: 16)
        let ids = (1...16).map { RequestID(rawValue: UInt64($0)) }
        for id in ids { s.enqueue(id, promptLength: 40) }
        let p = s.nextStep()
        // 12 whole prompts (480 tokens) and 32 tokens of the 13th fit in 512.
        XCTAssertEqual(p.items.count, 13)
        XCTAssertEqual(p.items.filter(\.samples).count, 12)
        XCTAssertEqual(p.items.last, prefill(ids[12], 0..<32, samples: false))
        XCTAssertEqual(p.tokenCount, 512)
        XCTAssertEqual(s.waitingCount, 3)
        let p2 = s.nextStep()
        XCTAssertEqual(p2.items.prefix(12).map(\.work), Array(repeating: .decode, count: 12))
        XCTAssertEqual(p2.items[12], prefill(ids[12], 32..<40, samples: true))
        XCTAssertEqual(p2.admitted, Array(ids[13...]))
    }
}
