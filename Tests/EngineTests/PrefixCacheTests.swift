import XCTest
@testable import Llama
@testable import Engine

/// Prompt prefixes reused across requests: the answers must be the reference's (transformers
/// computed every prompt whole), and reuse must follow the tokens and the adapters exactly.
final class PrefixCacheTests: EngineTestCase {
    /// Runs one greedy request to the end.
    private func run(_ engine: Engine, _ prompt: [Int32], adapters: AdapterPayload = .none) throws -> Collector {
        let c = Collector()
        try engine.submit(GenerationRequest(prompt: prompt, sampling: .greedy, maxTokens: 32, adapters: adapters, onEvent: c.callback))
        XCTAssertNotNil(c.wait(), "the request did not finish")
        return c
    }

    private func commonPrefix(_ a: [Int32], _ b: [Int32]) -> Int {
        zip(a, b).prefix { $0 == $1 }.count
    }

    func testSharedPromptPrefixIsReusedAndAnswersStayTheReferences() throws {
        let engine = try makeEngine()
        let cases = try greedyCases("base")
        // Cases 0 and 2 share their first tokens (the system message); case 1 shares only a few.
        var earlier: [[Int32]] = []
        var expectedCached = 0
        for i in [0, 2, 1, 0] {
            let prompt = cases[i].promptIDs
            let c = try run(engine, prompt)
            XCTAssertEqual(c.sampledIDs, cases[i].greedyIDs, "case \(i)")
            let shared = min(earlier.map { commonPrefix($0, prompt) }.max() ?? 0, prompt.count - 1)
            let cached = shared >= 16 ? shared : 0
            XCTAssertEqual(c.summary?.cachedPromptTokens, cached, "case \(i) after \(earlier.count) prompts")
            expectedCached += cached
            earlier.append(prompt)
        }
        XCTAssertGreaterThan(expectedCached, 0, "the reference cases no longer share a prefix")
        // The counters are published after the step that delivered the last event.
        XCTAssert(eventually { engine.metrics().kvCacheBytes == 0 })
        let m = engine.metrics()
        XCTAssertEqual(m.promptTokensCachedTotal, expectedCached)
        XCTAssertEqual(m.promptTokensTotal + m.promptTokensCachedTotal, [0, 2, 1, 0].reduce(0) { $0 + cases[$1].promptIDs.count })
        XCTAssertGreaterThan(m.prefixCacheBytes, 0)
        XCTAssertEqual(m.kvCacheBytes, 0)
    }

    /// A request that waited in the queue finds the prompt that ran meanwhile: the cache is
    /// asked on admission, not on arrival.
    func testAQueuedRequestReusesThePromptThatRanBeforeIt() throws {
        let engine = try makeEngine(EngineConfiguration(maxRunningSequences: 1))
        let ref = try greedyCases("base")[0]
        let collectors = [Collector(), Collector()]
        for c in collectors {
            try engine.submit(GenerationRequest(prompt: ref.promptIDs, sampling: .greedy, maxTokens: 32, onEvent: c.callback))
        }
        for c in collectors { XCTAssertNotNil(c.wait()) }
        XCTAssertEqual(collectors.map(\.sampledIDs), [ref.greedyIDs, ref.greedyIDs])
        XCTAssertEqual(collectors.map { $0.summary?.cachedPromptTokens }, [0, ref.promptIDs.count - 1])
    }

    func testCachingOffComputesEveryPromptToken() throws {
        let engine = try makeEngine(EngineConfiguration(prefixCacheBytes: 0))
        let ref = try greedyCases("base")[0]
        for _ in 0..<2 {
            let c = try run(engine, ref.promptIDs)
            XCTAssertEqual(c.sampledIDs, ref.greedyIDs)
            XCTAssertEqual(c.summary?.cachedPromptTokens, 0)
        }
        XCTAssert(eventually { engine.metrics().runningSequences == 0 })
        XCTAssertEqual(engine.metrics().promptTokensTotal, 2 * ref.promptIDs.count)
        XCTAssertEqual(engine.metrics().prefixCacheBytes, 0)
    }

    /// An adapter's keys and values differ from the base's: a prompt cached under one is never
    /// reused under the other, and each still gives its own reference answer.
    func testPrefixesAreKeptApartByAdapter() throws {
        let (model, _) = try defaultModel()
        let qv = AdapterPayload(adapters: [ScaledAdapter(try loadReferenceAdapterFile("qv-r8", model: model).makeLoRAAdapter(for: model.config))])
        let engine = try makeEngine()
        let base = try greedyCases("base")[0], adapted = try greedyCases("qv-r8")[0]
        XCTAssertEqual(base.promptIDs, adapted.promptIDs)
        let first = try run(engine, adapted.promptIDs, adapters: qv)
        XCTAssertEqual(first.summary?.cachedPromptTokens, 0)
        let plain = try run(engine, base.promptIDs)
        XCTAssertEqual(plain.summary?.cachedPromptTokens, 0, "the base reused the adapter's prefix")
        XCTAssertEqual(plain.sampledIDs, base.greedyIDs)
        let again = try run(engine, adapted.promptIDs, adapters: qv)
        XCTAssertEqual(again.summary?.cachedPromptTokens, adapted.promptIDs.count - 1)
        XCTAssertEqual(again.sampledIDs, adapted.greedyIDs)
        // Another scale is another adapter.
        let scaled = AdapterPayload(adapters: [ScaledAdapter(qv.adapters[0].adapter, scale: 0.5)])
        XCTAssertEqual(try run(engine, adapted.promptIDs, adapters: scaled).summary?.cachedPromptTokens, 0)
    }

    // MARK: - The cache alone

    private func filledCache(_ model: LlamaModel, _ n: Int, value: Float) -> KVCache {
        let source = model.makeCache()
        source.reserve(n)
        source.length = n
        // Positions hold `value + position` so copies can be told apart.
        for l in 0..<source.layerCount {
            for p in 0..<n { for j in 0..<source.kvDim { source.k[l][p * source.kvDim + j] = value + Float(p); source.v[l][p * source.kvDim + j] = -value - Float(p) } }
        }
        return source
    }

    func testLongestPrefixWinsAndOneTokenIsLeftToRun() throws {
        let (model, _) = try defaultModel()
        let cache = PrefixCache(capacityBytes: 64 << 20, minimumTokens: 4)
        let a: [Int32] = Array(1...20), b: [Int32] = Array(1...10) + Array(100...109)
        cache.insert(a, adapters: .none, from: filledCache(model, 20, value: 1)) { model.makeCache(maxLength: $0) }
        cache.insert(b, adapters: .none, from: filledCache(model, 20, value: 1000)) { model.makeCache(maxLength: $0) }
        XCTAssertEqual(cache.entryCount, 2)
        let hit = try XCTUnwrap(cache.lookup(Array(1...15) + [7, 7], adapters: .none))
        XCTAssertEqual(hit.length, 15)
        XCTAssertEqual(hit.entry.tokens, a)
        XCTAssertEqual(hit.entry.kv.k[3][14 * hit.entry.kv.kvDim], 15)  // copied, position 14 of the first source
        XCTAssertEqual(cache.lookup(a, adapters: .none)?.length, 19, "the whole prompt must not come from the cache")
        XCTAssertNil(cache.lookup([1, 2, 3, 9], adapters: .none), "3 tokens are below the minimum")
        let into = model.makeCache()
        into.copyPrefix(hit.length, from: hit.entry.kv)
        XCTAssertEqual(into.length, 15)
        XCTAssertEqual(into.v[29][14 * into.kvDim + 5], -15)
    }

    func testCoveredEntriesAreReplacedAndTheLeastRecentlyUsedLeaves() throws {
        let (model, _) = try defaultModel()
        let perToken = 2 * model.config.layerCount * model.config.kvDim * 4
        let cache = PrefixCache(capacityBytes: 50 * perToken, minimumTokens: 4)
        func insert(_ t: [Int32]) { cache.insert(t, adapters: .none, from: filledCache(model, t.count, value: 0)) { model.makeCache(maxLength: $0) } }
        insert(Array(1...10))
        insert(Array(1...20))  // covers the first: replaces it
        XCTAssertEqual(cache.entryCount, 1)
        XCTAssertEqual(cache.byteCount, 20 * perToken)
        insert(Array(1...12))  // covered by the second: nothing new
        XCTAssertEqual(cache.entryCount, 1)
        insert(Array(200...219))
        XCTAssertEqual(cache.byteCount, 40 * perToken)
        _ = cache.lookup(Array(1...20), adapters: .none)  // the first is now the most recently used
        insert(Array(300...319))  // 60 > 50: the least recently used (200…) leaves
        XCTAssertEqual(cache.byteCount, 40 * perToken)
        XCTAssertNotNil(cache.lookup(Array(1...20), adapters: .none))
        XCTAssertNil(cache.lookup(Array(200...219), adapters: .none))
        XCTAssertNotNil(cache.lookup(Array(300...319), adapters: .none))
        insert(Array(400...460))  // larger than the whole cache: not kept
        XCTAssertNil(cache.lookup(Array(400...460), adapters: .none))
    }

    func testEntriesOfAFreedAdapterAreDropped() throws {
        let (model, _) = try defaultModel()
        let cache = PrefixCache(capacityBytes: 64 << 20, minimumTokens: 4)
        let prompt: [Int32] = Array(1...20)
        do {
            let adapter = try loadReferenceAdapterFile("qv-r8", model: model).makeLoRAAdapter(for: model.config)
            let payload = AdapterPayload(adapters: [ScaledAdapter(adapter)])
            cache.insert(prompt, adapters: payload, from: filledCache(model, 20, value: 0)) { model.makeCache(maxLength: $0) }
            XCTAssertNotNil(cache.lookup(prompt, adapters: payload))
            XCTAssertNil(cache.lookup(prompt, adapters: .none))
        }
        XCTAssertNil(cache.lookup(prompt, adapters: .none))
        XCTAssertEqual(cache.entryCount, 0, "the freed adapter's entry is still held")
        XCTAssertEqual(cache.byteCount, 0)
    }
}
